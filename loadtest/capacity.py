#!/usr/bin/env python3
"""Measure the numbers in docs/capacity.md on this machine.

    .venv/bin/python loadtest/capacity.py [--duration 15] [--json out.json]

What it does (every process bound to loopback, stopped at the end):

* nginx (1 worker) stands in for the seed's two upstreams: it answers every request with 200
  and ~100 bytes of JSON on 127.0.0.62:1080 (user-service) and 127.0.0.63:1080
  (order-service), named through a hosts file (`TOLLWAY_DNS_HOSTSFILE`) as `make run` does.
  nginx rather than `tollway mock`, so the upstream is never the bottleneck.
* `tollway start` with ONE worker (`TOLLWAY_WORKERS=1`, `TOLLWAY_DATABASE=off`, access log
  off) pinned to CPU 0 with `taskset`; wrk and nginx pinned to CPU 1, so "one core" means one
  tollway worker on a core of its own. The machine's Redis serves the seed's `policy: redis`.
* Configs: the seed's `examples/gateway.yaml` + `examples/consumers.yaml` as they are
  (`seed`: after the first 100 requests in a minute every answer is the plugin's 429), and
  the same files with the rate-limiting limits raised to 10^9 (`seed-unlimited`: same
  plugin chain — cors, jwt, rate-limiting on Redis, correlation-id, prometheus — but every
  request is proxied). Requests: `GET /api/users` with the demo consumer's JWT.
* Throughput: `wrk -t1 -c50 -d<duration>s` after a 3 s warm-up (closed loop: the most the
  worker does). p95 at 50 % and 80 % of that: wrk with a Lua `delay()` per request so the
  50 connections offer that rate (adjusted once from a first run), p95 from wrk's own
  latency histogram (`done()` hook). 100 %: the closed-loop run.
* Memory: the worker's VmRSS after 2,000 requests, with 100 and with 10,000 routes
  (`/r-00000` … prefix routes on one service, the prometheus plugin global).
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
TOKEN = ("eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJpc3MiOiJkZW1vLWlzc3VlciIsInN1YiI6ImRlbW8ifQ."
         "JsfGBBuPzhyujkudzN5NKs1e4Nvp8kX_iPhmEeTYR0g")
UPSTREAMS = {"user-service": "127.0.0.62", "order-service": "127.0.0.63"}
BODY = '{"service":"capacity-upstream","status":"ok","message":"hello from the upstream"}'
LUA = """
local d = tonumber(os.getenv("CAP_DELAY_MS") or "0")
wrk.headers["Authorization"] = "Bearer @TOKEN@"
function delay() return d end
function done(summary, latency, requests)
  io.write(string.format("CAP p50=%d p95=%d p99=%d\\n", latency:percentile(50),
           latency:percentile(95), latency:percentile(99)))
end
""".replace("@TOKEN@", TOKEN)


def tollway_bin() -> str:
    here = Path(sys.executable).with_name("tollway")
    return str(here) if here.exists() else shutil.which("tollway") or "tollway"


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_http(url: str, timeout: float = 20.0, headers: dict[str, str] | None = None) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            req = urllib.request.Request(url, headers=headers or {})
            with urllib.request.urlopen(req, timeout=2) as r:
                return int(r.status)
        except urllib.error.HTTPError as e:
            return int(e.code)
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer within {timeout} s")


def start_nginx(work: Path) -> subprocess.Popen[bytes]:
    prefix = work / "nginx"
    prefix.mkdir()
    user = "user root;\n" if os.geteuid() == 0 else ""
    listens = "".join(f"    listen {ip}:1080 reuseport;\n" for ip in UPSTREAMS.values())
    temps = "".join(f"  {k}_temp_path {prefix}/tmp-{k};\n"
                    for k in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    (prefix / "nginx.conf").write_text(
        f"{user}daemon off;\nworker_processes 1;\npid {prefix}/nginx.pid;\n"
        f"error_log {prefix}/error.log warn;\nevents {{ worker_connections 4096; }}\n"
        f"http {{\n{temps}  access_log off;\n  keepalive_requests 10000000;\n"
        f"  server {{\n{listens}    default_type application/json;\n"
        f"    location / {{ return 200 '{BODY}'; }}\n  }}\n}}\n")
    proc = subprocess.Popen(["taskset", "-c", "1", "nginx", "-p", str(prefix), "-c",
                             str(prefix / "nginx.conf"), "-e", str(prefix / "error.log")])
    wait_http(f"http://{UPSTREAMS['user-service']}:1080/")
    return proc


def seed_docs(unlimited: bool) -> list[dict[str, Any]]:
    docs = [yaml.safe_load((ROOT / "examples" / f).read_text())
            for f in ("gateway.yaml", "consumers.yaml")]
    if unlimited:
        docs = copy.deepcopy(docs)
        for svc in docs[0]["services"]:
            for p in svc.get("plugins", []):
                if p["name"] == "rate-limiting":
                    for k in ("second", "minute", "hour", "day", "month", "year"):
                        if k in p["config"]:
                            p["config"][k] = 10**9
    return docs


def routes_doc(n: int) -> dict[str, Any]:
    return {"_format_version": "3.0",
            "plugins": [{"name": "prometheus"}],
            "services": [{"name": "user-service", "url": "http://user-service:1080",
                          "routes": [{"name": f"r-{i:05d}", "paths": [f"/r-{i:05d}"]}
                                     for i in range(n)]}]}


class Gateway:
    def __init__(self, work: Path, docs: list[dict[str, Any]], name: str) -> None:
        self.dir = work / name
        self.dir.mkdir()
        self.port, self.admin = free_port(), free_port()
        files = []
        for i, d in enumerate(docs):
            f = self.dir / f"config-{i}.yaml"
            f.write_text(yaml.safe_dump(d, sort_keys=False))
            files += ["--config", str(f)]
        env = {k: v for k, v in os.environ.items() if not k.startswith("TOLLWAY_")}
        env.update(TOLLWAY_DATABASE="off", TOLLWAY_WORKERS="1",
                   TOLLWAY_PROXY_LISTEN=f"127.0.0.1:{self.port}",
                   TOLLWAY_ADMIN_LISTEN=f"127.0.0.1:{self.admin}",
                   TOLLWAY_PROXY_ACCESS_LOG="off", TOLLWAY_PREFIX=str(self.dir / "prefix"),
                   TOLLWAY_DNS_HOSTSFILE=str(work / "hosts"))
        self.log = open(self.dir / "stderr.log", "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(["taskset", "-c", "0", tollway_bin(), "start", *files],
                                     env=env, stdout=subprocess.DEVNULL, stderr=self.log)
        wait_http(f"http://127.0.0.1:{self.admin}/status")

    def worker_rss_kib(self) -> int:
        kids = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children").read_text().split()
        # taskset execs tollway in place, so proc.pid is the supervisor; its child the worker.
        pid = int(kids[0])
        status = Path(f"/proc/{pid}/status").read_text()
        m = re.search(r"VmRSS:\s+(\d+) kB", status)
        assert m
        return int(m.group(1))

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(30)
        self.log.close()


def wrk(url: str, work: Path, duration: int, delay_ms: float = 0.0) -> dict[str, float]:
    script = work / "auth.lua"
    script.write_text(LUA)
    env = dict(os.environ, CAP_DELAY_MS=f"{delay_ms:.3f}")
    out = subprocess.run(["taskset", "-c", "1", "wrk", "-t1", "-c50", f"-d{duration}s",
                          "--timeout", "5s", "-s", str(script), url],
                         env=env, capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    lat = re.search(r"CAP p50=(\d+) p95=(\d+) p99=(\d+)", out)
    assert lat, out
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    total = float(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    return {"rps": round(rps, 1), "p50_ms": int(lat.group(1)) / 1000,
            "p95_ms": int(lat.group(2)) / 1000, "p99_ms": int(lat.group(3)) / 1000,
            "non_2xx_share": round((int(non2xx.group(1)) if non2xx else 0) / total, 3)}


def at_rate(url: str, work: Path, duration: int, target: float, latency_ms: float) -> dict:
    """50 connections, each waiting `delay` ms after its previous answer: rate = 50 / (delay +
    latency). Latency grows with the rate, so the delay is found by bisection on short runs
    (wrk's delay() has whole-millisecond resolution)."""
    lo, hi = 0, int(50_000 / target) + 1  # delay bounds, ms: rate(lo) > target > rate(hi)
    probe = max(3, duration // 4)
    for _ in range(6):
        if hi - lo <= 1:
            break
        mid = (lo + hi) // 2
        if wrk(url, work, probe, mid)["rps"] > target:
            lo = mid
        else:
            hi = mid
    res = wrk(url, work, duration, hi)
    res["target_rps"] = round(target, 1)
    res["delay_ms"] = hi
    return res


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--duration", type=int, default=15)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    results: dict[str, Any] = {"cpu": _cpu_model(), "nproc": os.cpu_count(),
                               "loadavg_before": os.getloadavg()[0]}
    with tempfile.TemporaryDirectory(prefix="tollway-capacity-") as tmp:
        work = Path(tmp)
        hosts = "".join(f"{ip} {n}\n" for n, ip in UPSTREAMS.items()) + "127.0.0.1 redis\n"
        (work / "hosts").write_text(hosts)
        nginx = start_nginx(work)
        try:
            for name, unlimited in (("seed-unlimited", True), ("seed", False)):
                gw = Gateway(work, seed_docs(unlimited), name)
                try:
                    url = f"http://127.0.0.1:{gw.port}/api/users"
                    wrk(url, work, 3)  # warm-up, discarded
                    full = wrk(url, work, args.duration)
                    row: dict[str, Any] = {"100%": full}
                    if unlimited:
                        for pct in (50, 80):
                            row[f"{pct}%"] = at_rate(url, work, args.duration,
                                                     full["rps"] * pct / 100, full["p50_ms"])
                    row["worker_rss_mib"] = round(gw.worker_rss_kib() / 1024, 1)
                    results[name] = row
                    print(name, json.dumps(row), flush=True)
                finally:
                    gw.stop()
            for n in (100, 10_000):
                gw = Gateway(work, [routes_doc(n)], f"routes-{n}")
                try:
                    url = f"http://127.0.0.1:{gw.port}/r-{n - 1:05d}"
                    for _ in range(2000):
                        wait_http(url)
                    results[f"routes-{n}"] = {"worker_rss_mib":
                                              round(gw.worker_rss_kib() / 1024, 1)}
                    print(f"routes-{n}", json.dumps(results[f"routes-{n}"]), flush=True)
                finally:
                    gw.stop()
        finally:
            nginx.send_signal(signal.SIGQUIT)
            nginx.wait(10)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    return 0


def _cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return "unknown"


if __name__ == "__main__":
    sys.exit(main())
