"""Running wrk and parsing its ``--latency`` report.

Standard library only, so the unit test can load this file on its own.

wrk (4.x) formats its numbers with these units (src/units.c):

* times: ``us``, ``ms``, ``s``, ``m``, ``h`` (e.g. ``544.12us``, ``1.20ms``, ``2.00s``);
* counts in the thread table: plain, ``k``, ``M``, ``G`` (metric, e.g. ``92.31k``);
* bytes: ``B``, ``KB``, ``MB``, ``GB``, ``TB`` (binary, e.g. ``14.99MB``).

``Requests/sec:`` and the ``N requests in`` line are plain numbers.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

_TIME_UNITS_S = {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
_METRIC = {"": 1.0, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12}
_BINARY = {"B": 1, "KB": 1024, "MB": 1024**2, "GB": 1024**3, "TB": 1024**4, "PB": 1024**5}

_NUM = r"(\d+(?:\.\d+)?)"
_RE_TIME = re.compile(rf"^{_NUM}(us|ms|s|m|h)$")
_RE_METRIC = re.compile(rf"^{_NUM}([kMGT]?)$")
_RE_BYTES = re.compile(rf"^{_NUM}(B|KB|MB|GB|TB|PB)$")
_RE_PERCENTILE = re.compile(rf"^\s*{_NUM}%\s+(\S+)\s*$")
_RE_TOTALS = re.compile(r"^\s*(\d+) requests in (\S+), (\S+) read\s*$")
_RE_SOCKET = re.compile(
    r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)"
)
_RE_NON2XX = re.compile(r"Non-2xx or 3xx responses: (\d+)")
_RE_RPS = re.compile(rf"^Requests/sec:\s+{_NUM}\s*$", re.MULTILINE)
_RE_TPS = re.compile(r"^Transfer/sec:\s+(\S+)\s*$", re.MULTILINE)


class WrkParseError(ValueError):
    """The text is not a wrk report (or lacks the parts we need)."""


def parse_time(text: str) -> float:
    """``"544.12us"`` -> seconds (``0.00054412``)."""
    m = _RE_TIME.match(text.strip())
    if not m:
        raise WrkParseError(f"not a wrk time: {text!r}")
    return float(m.group(1)) * _TIME_UNITS_S[m.group(2)]


def parse_metric(text: str) -> float:
    """``"92.31k"`` -> ``92310.0``; plain numbers pass through."""
    m = _RE_METRIC.match(text.strip())
    if not m:
        raise WrkParseError(f"not a wrk count: {text!r}")
    return float(m.group(1)) * _METRIC[m.group(2)]


def parse_bytes(text: str) -> float:
    """``"14.99MB"`` -> bytes (binary multiples, as wrk prints them)."""
    m = _RE_BYTES.match(text.strip())
    if not m:
        raise WrkParseError(f"not a wrk byte size: {text!r}")
    return float(m.group(1)) * _BINARY[m.group(2)]


@dataclass
class WrkResult:
    """One wrk run. Times are in seconds, sizes in bytes."""

    requests_per_sec: float
    requests: int
    duration_s: float
    bytes_read: float
    transfer_per_sec: float
    latency_avg_s: float
    latency_stdev_s: float
    latency_max_s: float
    req_per_thread_avg: float
    percentiles: dict[str, float] = field(default_factory=dict)  # "50" -> seconds
    socket_errors: dict[str, int] = field(default_factory=dict)
    non_2xx_3xx: int = 0

    @property
    def p50_s(self) -> float:
        return self.percentiles["50"]

    @property
    def p99_s(self) -> float:
        return self.percentiles["99"]

    @property
    def errors(self) -> int:
        """Socket errors of any kind plus non-2xx/3xx responses."""
        return sum(self.socket_errors.values()) + self.non_2xx_3xx

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["p50_s"] = self.p50_s
        data["p99_s"] = self.p99_s
        data["errors"] = self.errors
        return data


def _stat_row(lines: Sequence[str], name: str) -> list[str]:
    for line in lines:
        parts = line.split()
        if parts and parts[0] == name:
            return parts[1:]
    raise WrkParseError(f"no {name!r} row in the thread stats")


def parse_wrk_output(text: str) -> WrkResult:
    """Parse the stdout of ``wrk --latency ...``."""
    lines = text.splitlines()

    rps_m = _RE_RPS.search(text)
    if not rps_m:
        raise WrkParseError("no 'Requests/sec:' line in wrk output")

    latency = _stat_row(lines, "Latency")
    reqsec = _stat_row(lines, "Req/Sec")
    if len(latency) < 3 or len(reqsec) < 1:
        raise WrkParseError("truncated thread stats")

    percentiles: dict[str, float] = {}
    in_dist = False
    for line in lines:
        if line.strip() == "Latency Distribution":
            in_dist = True
            continue
        if in_dist:
            pm = _RE_PERCENTILE.match(line)
            if not pm:
                break
            key = pm.group(1)
            key = key[:-3] if key.endswith(".00") else key  # "99.00" -> "99"
            percentiles[key] = parse_time(pm.group(2))
    if "50" not in percentiles or "99" not in percentiles:
        raise WrkParseError("no latency distribution (was wrk run with --latency?)")

    totals = None
    for line in lines:
        totals = _RE_TOTALS.match(line)
        if totals:
            break
    if not totals:
        raise WrkParseError("no 'N requests in T, B read' line")

    socket_errors = {"connect": 0, "read": 0, "write": 0, "timeout": 0}
    sm = _RE_SOCKET.search(text)
    if sm:
        for key, value in zip(socket_errors, sm.groups(), strict=True):
            socket_errors[key] = int(value)
    nm = _RE_NON2XX.search(text)
    tm = _RE_TPS.search(text)

    return WrkResult(
        requests_per_sec=float(rps_m.group(1)),
        requests=int(totals.group(1)),
        duration_s=parse_time(totals.group(2)),
        bytes_read=parse_bytes(totals.group(3)),
        transfer_per_sec=parse_bytes(tm.group(1)) if tm else 0.0,
        latency_avg_s=parse_time(latency[0]),
        latency_stdev_s=parse_time(latency[1]),
        latency_max_s=parse_time(latency[2]),
        req_per_thread_avg=parse_metric(reqsec[0]),
        percentiles=percentiles,
        socket_errors=socket_errors,
        non_2xx_3xx=int(nm.group(1)) if nm else 0,
    )


# Lua script for the upload scenario: POST a 1 MiB body on every request.
# wrk adds Content-Length itself when wrk.body is set.
UPLOAD_LUA = """\
wrk.method = "POST"
wrk.body = string.rep("a", 1048576)
wrk.headers["Content-Type"] = "application/octet-stream"
"""


@dataclass
class WrkParams:
    threads: int = 1
    connections: int = 50
    duration_s: int = 10
    timeout_s: int = 5

    def describe(self) -> str:
        return (
            f"wrk -t{self.threads} -c{self.connections} -d{self.duration_s}s "
            f"--timeout {self.timeout_s}s --latency"
        )


def wrk_command(
    url: str,
    params: WrkParams,
    duration_s: int | None = None,
    script: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> list[str]:
    """The wrk argv; every request carries ``headers`` (one ``-H "Name: value"`` each)."""
    cmd = [
        "wrk",
        f"-t{params.threads}",
        f"-c{params.connections}",
        f"-d{duration_s if duration_s is not None else params.duration_s}s",
        f"--timeout={params.timeout_s}s",
        "--latency",
    ]
    for name, value in (headers or {}).items():
        if not name or ":" in name or "\n" in name + value or "\r" in name + value:
            raise ValueError(f"bad header for wrk -H: {name!r}: {value!r}")
        cmd += ["-H", f"{name}: {value}"]
    if script:
        cmd += ["-s", script]
    cmd.append(url)
    return cmd


def run_wrk(
    url: str,
    params: WrkParams,
    *,
    duration_s: int | None = None,
    script: str | None = None,
    preexec_fn: Callable[[], None] | None = None,
    headers: Mapping[str, str] | None = None,
) -> tuple[WrkResult, str]:
    """Run wrk to completion; return the parsed result and the raw report."""
    cmd = wrk_command(url, params, duration_s, script, headers)
    wall = (duration_s if duration_s is not None else params.duration_s) + 30
    proc = subprocess.run(
        cmd, capture_output=True, text=True, timeout=wall, preexec_fn=preexec_fn, check=False
    )
    if proc.returncode != 0:
        raise RuntimeError(f"wrk exited {proc.returncode}: {proc.stderr.strip()[-500:]}")
    return parse_wrk_output(proc.stdout), proc.stdout
