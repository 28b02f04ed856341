"""The bench harness's parser for ``wrk --latency`` reports (bench/_wrk.py)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest


def _load_wrk_module() -> ModuleType:
    # Loaded by file path: `bench` is a script directory, not an installed package, and a
    # plain `import bench` could resolve to this test folder (tests/unit/bench).
    path = Path(__file__).resolve().parents[3] / "bench" / "_wrk.py"
    spec = importlib.util.spec_from_file_location("tollway_bench_wrk", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look the module up by name
    spec.loader.exec_module(module)
    return module


wrk = _load_wrk_module()

# Captured from `wrk -t1 -c50 -d3s --timeout=5s --latency` (wrk 4.1.0, Debian) on the bench:
# nginx proxy, bare scenario. Mixed us/ms units in the distribution; "k" in Req/Sec.
NGINX_BARE = """\
Running 3s test @ http://127.0.0.1:42243/
  1 threads and 50 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency   809.70us  147.19us   2.28ms   73.91%
    Req/Sec    60.76k     1.92k   64.04k    76.67%
  Latency Distribution
     50%  794.00us
     75%    0.88ms
     90%    1.00ms
     99%    1.27ms
  181010 requests in 3.00s, 41.78MB read
Requests/sec:  60321.10
Transfer/sec:     13.92MB
"""

# Captured: nginx proxy, upload scenario, with an upstream that answered early (socket errors).
UPLOAD_WITH_ERRORS = """\
Running 3s test @ http://127.0.0.1:47063/upload
  1 threads and 50 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency    27.97ms    4.39ms  41.51ms   68.48%
    Req/Sec     1.72k   213.49     1.99k    56.67%
  Latency Distribution
     50%   26.80ms
     75%   30.32ms
     90%   35.10ms
     99%   38.46ms
  5134 requests in 3.00s, 1.18MB read
  Socket errors: connect 0, read 5134, write 0, timeout 0
Requests/sec:   1709.44
Transfer/sec:    403.99KB
"""

# Captured (aiohttp, routes-10k) and then edited to exercise seconds, plain Req/Sec counts,
# KB sizes and the non-2xx line.
SLOW_WITH_NON2XX = """\
Running 10s test @ http://127.0.0.1:59301/route-09999
  1 threads and 50 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency   964.99ms  211.66ms   2.16s    76.60%
    Req/Sec    77.66     22.00   101.00     31.03%
  Latency Distribution
     50%  963.44ms
     75%    1.03s
     90%    1.75s
     99%    2.12s
  229 requests in 10.01s, 48.58KB read
  Socket errors: connect 0, read 0, write 0, timeout 3
  Non-2xx or 3xx responses: 7
Requests/sec:     22.88
Transfer/sec:      4.85KB
"""


def test_parses_nginx_capture_us_ms_and_k() -> None:
    r = wrk.parse_wrk_output(NGINX_BARE)
    assert r.requests_per_sec == pytest.approx(60321.10)
    assert r.p50_s == pytest.approx(794e-6)
    assert r.p99_s == pytest.approx(1.27e-3)
    assert r.percentiles["75"] == pytest.approx(0.88e-3)
    assert r.latency_avg_s == pytest.approx(809.70e-6)
    assert r.latency_max_s == pytest.approx(2.28e-3)
    assert r.req_per_thread_avg == pytest.approx(60760.0)
    assert r.requests == 181010
    assert r.duration_s == pytest.approx(3.0)
    assert r.bytes_read == pytest.approx(41.78 * 1024**2)
    assert r.transfer_per_sec == pytest.approx(13.92 * 1024**2)
    assert r.errors == 0
    assert r.socket_errors == {"connect": 0, "read": 0, "write": 0, "timeout": 0}


def test_socket_errors_are_counted() -> None:
    r = wrk.parse_wrk_output(UPLOAD_WITH_ERRORS)
    assert r.requests_per_sec == pytest.approx(1709.44)
    assert r.p50_s == pytest.approx(26.80e-3)
    assert r.p99_s == pytest.approx(38.46e-3)
    assert r.req_per_thread_avg == pytest.approx(1720.0)
    assert r.socket_errors["read"] == 5134
    assert r.errors == 5134
    assert r.transfer_per_sec == pytest.approx(403.99 * 1024)


def test_seconds_plain_counts_and_non2xx() -> None:
    r = wrk.parse_wrk_output(SLOW_WITH_NON2XX)
    assert r.requests_per_sec == pytest.approx(22.88)
    assert r.p50_s == pytest.approx(0.96344)
    assert r.p99_s == pytest.approx(2.12)
    assert r.latency_max_s == pytest.approx(2.16)
    assert r.req_per_thread_avg == pytest.approx(77.66)
    assert r.non_2xx_3xx == 7
    assert r.socket_errors["timeout"] == 3
    assert r.errors == 10
    assert r.to_dict()["p99_s"] == pytest.approx(2.12)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("544.12us", 544.12e-6), ("1.20ms", 1.2e-3), ("2.00s", 2.0), ("1.50m", 90.0)],
)
def test_time_units(text: str, seconds: float) -> None:
    assert wrk.parse_time(text) == pytest.approx(seconds)


@pytest.mark.parametrize(
    ("text", "value"), [("644.30", 644.3), ("92.31k", 92310.0), ("1.02M", 1.02e6)]
)
def test_metric_suffixes(text: str, value: float) -> None:
    assert wrk.parse_metric(text) == pytest.approx(value)


def test_rejects_output_without_latency_distribution() -> None:
    text = NGINX_BARE.split("  Latency Distribution")[0] + (
        "  181010 requests in 3.00s, 41.78MB read\nRequests/sec:  60321.10\n"
    )
    with pytest.raises(wrk.WrkParseError):
        wrk.parse_wrk_output(text)
    with pytest.raises(wrk.WrkParseError):
        wrk.parse_wrk_output("unable to connect to 127.0.0.1:1 Connection refused\n")


def test_wrk_command_sends_headers_before_script_and_url() -> None:
    params = wrk.WrkParams(threads=1, connections=50, duration_s=3)
    cmd = wrk.wrk_command(
        "http://127.0.0.1:1/",
        params,
        script="up.lua",
        headers={"Authorization": "Bearer a.b.c", "Origin": "http://localhost:3000"},
    )
    assert cmd[-1] == "http://127.0.0.1:1/"
    assert cmd[-3:-1] == ["-s", "up.lua"]
    h = [cmd[i + 1] for i, arg in enumerate(cmd) if arg == "-H"]
    assert h == ["Authorization: Bearer a.b.c", "Origin: http://localhost:3000"]


@pytest.mark.parametrize("name,value", [("Bad:Name", "v"), ("X", "a\r\nb"), ("", "v")])
def test_wrk_command_rejects_unsendable_headers(name: str, value: str) -> None:
    with pytest.raises(ValueError):
        wrk.wrk_command("http://127.0.0.1:1/", wrk.WrkParams(), headers={name: value})
