"""scripts/run-monitoring (`make run-monitoring`): the Prometheus config it writes passes
`promtool check config` (which also loads the alert rules it names), and a real Prometheus
started on exactly that config scrapes a real node's status listener with the rules loaded."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import httpx
import yaml
from deploy_support import DEPLOY, REPO, require_tools
from node_support import Node, free_port, simple_config, wait_until

SCRIPT = REPO / "scripts" / "run-monitoring"


def _write_config(tmp: Path, status_listen: str | None = None) -> Path:
    env = {k: v for k, v in os.environ.items() if k != "TOLLWAY_STATUS_LISTEN"}
    if status_listen:
        env["TOLLWAY_STATUS_LISTEN"] = status_listen
    proc = subprocess.run([str(SCRIPT), "--write-config", str(tmp)], env=env,
                          capture_output=True, text=True, timeout=30)
    assert proc.returncode == 0, proc.stderr
    path = Path(proc.stdout.strip())
    assert path == tmp / "prometheus.yml"
    return path


def test_written_config_passes_promtool(tmp_path: Path) -> None:
    require_tools("promtool")
    path = _write_config(tmp_path)
    proc = subprocess.run(["promtool", "check", "config", str(path)], capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "SUCCESS" in proc.stdout + proc.stderr
    config = yaml.safe_load(path.read_text())
    assert config["rule_files"] == [str(DEPLOY / "prometheus" / "alerts.yml")]
    job = config["scrape_configs"][0]
    # the status listener make run-monitoring turns on: /metrics needs no admin token there
    assert job["static_configs"][0]["targets"] == ["127.0.0.1:8100"]


def test_usage_errors_exit_2(tmp_path: Path) -> None:
    for args in (["--write-config"], ["--bogus"]):
        proc = subprocess.run([str(SCRIPT), *args], capture_output=True, text=True,
                              timeout=30)
        assert proc.returncode == 2
        assert "usage:" in proc.stderr


def test_prometheus_on_that_config_scrapes_the_status_listener(tmp_path: Path) -> None:
    require_tools("prometheus")
    status = f"127.0.0.1:{free_port()}"
    node = Node(tmp_path / "node", config=simple_config("http://127.0.0.1:1"), workers=1,
                env={"TOLLWAY_DATABASE": "off", "TOLLWAY_STATUS_LISTEN": status}).start()
    path = _write_config(tmp_path / "prom", status)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with open(tmp_path / "prometheus.log", "wb") as log:
        prom = subprocess.Popen(["prometheus", f"--config.file={path}",
                                 f"--storage.tsdb.path={tmp_path / 'data'}",
                                 f"--web.listen-address=127.0.0.1:{port}"],
                                stdout=log, stderr=subprocess.STDOUT)
    try:
        def target_up() -> bool:
            r = httpx.get(url + "/api/v1/targets", timeout=2)
            if r.status_code != 200:
                return False  # "Service Unavailable" (plain text) until Prometheus is ready
            body = r.json()
            targets = body["data"]["activeTargets"]
            return any(t["health"] == "up" and t["scrapeUrl"] == f"http://{status}/metrics"
                       for t in targets)
        # scrape_interval is 5 s: the first scrape lands within one interval of startup
        wait_until(target_up, 30, interval=0.5, what="prometheus scraping the status listener")
        rules = httpx.get(url + "/api/v1/rules", timeout=5).json()["data"]["groups"]
        assert sum(len(g["rules"]) for g in rules) > 0
        up = httpx.get(url + "/api/v1/query", params={"query": 'up{job="tollway"}'},
                       timeout=5).json()["data"]["result"]
        assert [r["value"][1] for r in up] == ["1"]
    finally:
        prom.terminate()
        prom.wait(20)
        node.stop()
