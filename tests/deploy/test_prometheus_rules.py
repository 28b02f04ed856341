"""deploy/prometheus: `promtool check rules`, `promtool check config` and the rule unit tests
(`promtool test rules deploy/prometheus/alerts_test.yml`), plus the coverage of those tests:
every alert has a firing case, and every alert links a runbook that exists."""

from __future__ import annotations

import subprocess

import yaml
from deploy_support import DEPLOY, REPO, require_tools

PROM = DEPLOY / "prometheus"


def _alerts() -> list[dict]:
    doc = yaml.safe_load((PROM / "alerts.yml").read_text())
    return [r for g in doc["groups"] for r in g["rules"] if "alert" in r]


def test_promtool_check_rules() -> None:
    require_tools("promtool")
    proc = subprocess.run(["promtool", "check", "rules", str(PROM / "alerts.yml")],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"SUCCESS: {len(_alerts())} rules found" in proc.stdout


def test_promtool_check_config() -> None:
    require_tools("promtool")
    proc = subprocess.run(["promtool", "check", "config", str(PROM / "prometheus.yml")],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_promtool_test_rules() -> None:
    require_tools("promtool")
    proc = subprocess.run(["promtool", "test", "rules", "alerts_test.yml"], cwd=PROM,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "SUCCESS" in proc.stdout


def test_every_alert_has_a_firing_unit_test() -> None:
    tests = yaml.safe_load((PROM / "alerts_test.yml").read_text())["tests"]
    firing = {c["alertname"] for t in tests for c in t["alert_rule_test"] if c["exp_alerts"]}
    assert {a["alert"] for a in _alerts()} <= firing


def test_seed_alerts_keep_their_thresholds() -> None:
    """The seed's four alerts: same names, thresholds, `for` and severities."""
    by_name = {a["alert"]: a for a in _alerts()}
    seed = {"HighErrorRate": ("> 0.05", "5m", "critical"),
            "HighLatency": ("> 1.0", "10m", "warning"),
            "RateLimitHigh": ("> 10", "5m", "info"),
            "CircuitBreakerOpen": ("> 0", "2m", "critical")}
    for name, (threshold, for_, severity) in seed.items():
        rule = by_name[name]
        assert rule["expr"].strip().endswith(threshold), name
        assert (rule["for"], rule["labels"]["severity"]) == (for_, severity), name


def test_every_alert_links_an_existing_runbook() -> None:
    for alert in _alerts():
        path = REPO / alert["annotations"]["runbook_url"]
        assert path.is_file(), f"{alert['alert']}: {path} missing"
        assert f"`{alert['alert']}`" in path.read_text(), path
