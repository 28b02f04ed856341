"""tollway benchmark harness: wrk against nginx, a plain aiohttp proxy and tollway on loopback.

    python bench/run.py                 # full run (make bench)
    python bench/run.py --quick         # -d3s cells, 1 s warm-up
    python bench/run.py --scenarios bare,upload-1mib --systems nginx-proxy,tollway
    python bench/run.py --json results.json

See docs/performance.md for the methodology.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

if __package__ in (None, ""):  # run as a script: make `bench` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import _chain, _nginx
from bench._proc import (
    PINNINGS,
    ProcessSet,
    http_get,
    http_get_full,
    http_post,
    pinner,
    usable_cpus,
)
from bench._systems import (
    ALL_SYSTEMS,
    REPO_ROOT,
    Running,
    System,
    TLSMaterial,
    Upstream,
    make_tls_material,
)
from bench._wrk import UPLOAD_LUA, WrkParams, WrkResult, run_wrk


@dataclass(frozen=True)
class Scenario:
    name: str
    title: str
    n_routes: int
    path: str
    upload: bool = False
    # The seed's plugin chain with this rate-limiting policy (bench/_chain.py), on systems
    # that run it (tollway); wrk sends the chain's request headers to every system.
    chain: str | None = None
    # TLS termination on the proxy (systems with supports_tls), the same certificate for all.
    tls: bool = False
    # Balance over this many targets (a Kong `upstreams` entity / an nginx `upstream` block),
    # listen ports of the upstream nginx; only systems with supports_targets.
    targets: int = 0


SCENARIOS: dict[str, Scenario] = {
    s.name: s
    for s in (
        Scenario("bare", "bare proxy: 1 route (`/`), GET / -> 200 + ~100 B JSON", 1, "/"),
        Scenario(
            "routes-10k",
            "10,000 prefix routes /route-00000../route-09999, GET /route-09999",
            10_000,
            "/route-09999",
        ),
        Scenario(
            "upload-1mib",
            "1 MiB request body: POST /upload (1 route `/`), upstream reads and discards it",
            1,
            _nginx.UPLOAD_PATH,
            upload=True,
        ),
        Scenario(
            "download-1mib",
            "1 MiB response body: GET /1mib.bin (1 route `/`), static file on the upstream",
            1,
            _nginx.DOWNLOAD_PATH,
        ),
        Scenario(
            "seed-chain",
            "the seed's user-service chain on 1 route `/` (tollway: jwt HS256, rate-limiting "
            "policy local (limits never reached), correlation-id, prometheus, global cors; "
            "nginx-proxy and aiohttp: plain proxy), GET / with Authorization: Bearer + Origin",
            1,
            "/",
            chain="local",
        ),
        Scenario(
            "seed-chain-redis",
            "as seed-chain, rate-limiting policy redis (127.0.0.1:6379) "
            "(nginx-proxy and aiohttp: plain proxy)",
            1,
            "/",
            chain="redis",
        ),
        Scenario(
            "tls-bare",
            "TLS termination: as bare, over https (TLS 1.3, one ECDSA P-256 certificate for "
            "every system, keep-alive connections; aiohttp: not run)",
            1,
            "/",
            tls=True,
        ),
        Scenario(
            "targets-4",
            "load balancing: 1 route `/` to an upstream of 4 targets (tollway: Kong `upstreams` "
            "entity, round-robin; nginx-proxy: 4-server `upstream` block, keepalive 128; "
            "aiohttp: not run), GET /",
            1,
            "/",
            targets=4,
        ),
    )
}
REFERENCE = "nginx-proxy"


# --------------------------------------------------------------------------- tools


def ensure_tools() -> None:
    """nginx and wrk come from Debian's packages; install them when missing and root."""
    missing = [t for t in ("nginx", "wrk") if shutil.which(t) is None]
    if not missing:
        return
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        sys.exit(f"bench: missing {', '.join(missing)}; install: apt-get install nginx-light wrk")
    print(f"bench: installing {', '.join(missing)} from Debian packages ...", flush=True)
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    subprocess.run(["apt-get", "update"], check=True, env=env, stdout=subprocess.DEVNULL)
    packages = ["nginx-light" if t == "nginx" else t for t in missing]
    subprocess.run(
        ["apt-get", "install", "-y", *packages], check=True, env=env, stdout=subprocess.DEVNULL
    )
    # Debian starts the packaged nginx service; the bench does not need it.
    subprocess.run(["service", "nginx", "stop"], check=False, capture_output=True)


def _version(cmd: list[str]) -> str:
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=10, check=False)
    except OSError:
        return "?"
    out = (proc.stdout + proc.stderr).strip().splitlines()
    return out[0] if out else "?"


def machine_info() -> dict[str, Any]:
    cpu = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        import aiohttp

        aiohttp_version = aiohttp.__version__
    except ImportError:
        aiohttp_version = "not installed"
    commit = _version(["git", "-C", str(REPO_ROOT), "rev-parse", "--short", "HEAD"])
    return {
        "cpu": cpu,
        "cpus": sorted(usable_cpus()),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "nginx": _version(["nginx", "-v"]),
        "wrk": _version(["wrk", "-v"]),
        "aiohttp": aiohttp_version,
        "git_commit": commit,
    }


# --------------------------------------------------------------------------- checks


def smoke_check(
    base_url: str,
    scenario: Scenario,
    headers: dict[str, str] | None = None,
    chain: bool = False,
) -> None:
    """One request through the proxy before wrk: right status and right body size.

    With ``chain`` (the system runs the seed chain), the response must also carry the chain's
    headers, and the same request without its token must be refused with 401 (jwt ran).
    """
    url = base_url + scenario.path
    if scenario.targets:
        _check_targets_spread(url, scenario)
        return
    if chain:
        status, resp_headers, body = http_get_full(url, timeout=10, headers=headers)
        problem = _chain.check_chain_response(status, resp_headers)
        if problem:
            raise RuntimeError(f"GET {scenario.path} with the chain's headers: {problem}")
        if body.decode(errors="replace") != _nginx.JSON_BODY:
            raise RuntimeError(f"GET {scenario.path}: unexpected body {body[:120]!r}")
        no_token = {k: v for k, v in (headers or {}).items() if k != "Authorization"}
        status, _, _ = http_get_full(url, timeout=10, headers=no_token)
        if status != 401:
            raise RuntimeError(f"GET {scenario.path} without a token: HTTP {status}, want 401")
        return
    if scenario.upload:
        status, body = http_post(url, b"a" * _nginx.UPLOAD_SIZE, timeout=10)
        if status != 200 or body.decode(errors="replace") != _nginx.JSON_BODY:
            raise RuntimeError(f"POST {scenario.path} with 1 MiB: HTTP {status} {body[:120]!r}")
        return
    status, body = http_get(url, timeout=10, headers=headers)
    if status != 200:
        raise RuntimeError(f"GET {scenario.path}: HTTP {status}")
    if scenario.path == _nginx.DOWNLOAD_PATH:
        if len(body) != _nginx.DOWNLOAD_SIZE:
            raise RuntimeError(f"GET {scenario.path}: {len(body)} bytes, want 1 MiB")
    elif body.decode(errors="replace") != _nginx.JSON_BODY:
        raise RuntimeError(f"GET {scenario.path}: unexpected body {body[:120]!r}")


def _check_targets_spread(url: str, scenario: Scenario) -> None:
    """Requests must reach more than one target (the upstream names its port in a header)."""
    seen: set[str] = set()
    for _ in range(4 * scenario.targets):
        status, resp_headers, body = http_get_full(url, timeout=10)
        if status != 200 or body.decode(errors="replace") != _nginx.JSON_BODY:
            raise RuntimeError(f"GET {scenario.path}: HTTP {status} {body[:120]!r}")
        seen.add(resp_headers.get(_nginx.TARGET_HEADER) or "?")
    if len(seen - {"?"}) < 2:
        raise RuntimeError(
            f"GET {scenario.path} x{4 * scenario.targets}: answered by targets {sorted(seen)}, "
            "want more than one"
        )


# --------------------------------------------------------------------------- formatting


def fmt_latency(seconds: float) -> str:
    if seconds < 1e-3:
        return f"{seconds * 1e6:.0f}us"
    if seconds < 1.0:
        return f"{seconds * 1e3:.2f}ms"
    return f"{seconds:.2f}s"


def fmt_ratio(num: float | None, den: float | None) -> str:
    if not num or not den:
        return "-"
    return f"{num / den:.2f}x"


def rps_of(cell: dict[str, Any]) -> float | None:
    if cell.get("status") != "ok":
        return None
    return float(cell["wrk"]["requests_per_sec"])


def print_scenario(scenario: Scenario, cells: dict[str, dict[str, Any]]) -> None:
    print(f"\n== {scenario.name}: {scenario.title}")
    header = f"  {'system':<12} {'req/s':>10} {'p50':>9} {'p99':>9} {'vs nginx':>9} {'errors':>7}"
    print(header)
    ref = rps_of(cells.get(REFERENCE, {}))
    for name, cell in cells.items():
        if cell["status"] != "ok":
            print(f"  {name:<12} {cell['status']}: {cell.get('reason', '')}")
            continue
        w = cell["wrk"]
        print(
            f"  {name:<12} {w['requests_per_sec']:>10,.0f} {fmt_latency(w['p50_s']):>9} "
            f"{fmt_latency(w['p99_s']):>9} {fmt_ratio(w['requests_per_sec'], ref):>9} "
            f"{w['errors']:>7}"
        )
    if "tollway" in cells and "aiohttp" in cells:
        t, a = rps_of(cells["tollway"]), rps_of(cells["aiohttp"])
        print(f"  tollway vs aiohttp: {fmt_ratio(t, a)} req/s")
    sys.stdout.flush()


def print_summary(
    scenarios: list[Scenario], results: dict[str, dict[str, dict[str, Any]]], systems: list[str]
) -> None:
    print("\n== summary (req/s; ratio to nginx-proxy in brackets)")
    head = f"  {'scenario':<17}" + "".join(f" {n:>22}" for n in systems)
    if "tollway" in systems and "aiohttp" in systems:
        head += f" {'tollway/aiohttp':>16}"
    print(head)
    for sc in scenarios:
        cells = results.get(sc.name, {})
        ref = rps_of(cells.get(REFERENCE, {}))
        row = f"  {sc.name:<17}"
        for name in systems:
            rps = rps_of(cells.get(name, {}))
            text = "-" if rps is None else f"{rps:,.0f} ({fmt_ratio(rps, ref)})"
            row += f" {text:>22}"
        if "tollway" in systems and "aiohttp" in systems:
            t, a = rps_of(cells.get("tollway", {})), rps_of(cells.get("aiohttp", {}))
            row += f" {fmt_ratio(t, a):>16}"
        print(row)
    if any(sc.chain for sc in scenarios):
        print_issue_ratios(_chain.issue_ratios(results))


def print_issue_ratios(ratios: list[dict[str, Any]]) -> None:
    """Issue #3's targets: tollway req/s ratios across scenarios."""
    print("\n== issue #3 targets (req/s ratios)")
    for r in ratios:
        what = f"{r['label']} ({r['numerator']} / {r['denominator']})"
        if r["ratio"] is None:
            print(f"  {what:<76} {'-':>6}  target >= {r['minimum']:.2f}  (needs {r['missing']})")
            continue
        verdict = "met" if r["met"] else "MISSED"
        print(f"  {what:<76} {r['ratio']:>5.2f}x  target >= {r['minimum']:.2f}  {verdict}")


# --------------------------------------------------------------------------- running


def measure(
    running: Running,
    scenario: Scenario,
    params: WrkParams,
    warmup_s: int,
    script: str | None,
    wrk_cpus: set[int] | None,
    repeat: int = 1,
    headers: dict[str, str] | None = None,
) -> tuple[WrkResult, str, list[float]]:
    """Warm up once, then run wrk ``repeat`` times; keep the run with the median req/s."""
    url = running.base_url + scenario.path
    if warmup_s > 0:
        run_wrk(
            url,
            params,
            duration_s=warmup_s,
            script=script,
            preexec_fn=pinner(wrk_cpus),
            headers=headers,
        )
    runs: list[tuple[WrkResult, str]] = []
    for _ in range(max(1, repeat)):
        runs.append(
            run_wrk(url, params, script=script, preexec_fn=pinner(wrk_cpus), headers=headers)
        )
        if not running.child.alive():
            raise RuntimeError(
                f"{running.child.name} died during the run:\n{running.child.log_tail()}"
            )
    ordered = sorted(runs, key=lambda r: r[0].requests_per_sec)
    result, raw = ordered[(len(ordered) - 1) // 2]
    return result, raw, [r.requests_per_sec for r, _ in runs]


def run_cell(
    system: System,
    scenario: Scenario,
    procs: ProcessSet,
    workdir: Path,
    upstream: Upstream,
    params: WrkParams,
    warmup_s: int,
    script: str | None,
    layout: dict[str, set[int]],
    repeat: int = 1,
    headers: dict[str, str] | None = None,
    tls: TLSMaterial | None = None,
) -> dict[str, Any]:
    mark = len(procs.children)
    chain = scenario.chain if system.runs_chain else None
    try:
        running = system.start(
            procs, workdir, upstream.port, scenario.n_routes, layout.get("sut"), chain=chain,
            tls=tls if scenario.tls else None,
            targets=upstream.target_ports[: scenario.targets] if scenario.targets else None,
        )
        smoke_check(running.base_url, scenario, headers, chain=chain is not None)
        result, raw, all_rps = measure(
            running, scenario, params, warmup_s, script, layout.get("wrk"), repeat, headers
        )
        cell: dict[str, Any] = {
            "status": "ok",
            "wrk": result.to_dict(),
            "raw": raw,
            "runs_requests_per_sec": all_rps,
        }
        if result.errors:
            cell["warning"] = (
                f"wrk reported errors: socket {result.socket_errors}, "
                f"non-2xx/3xx {result.non_2xx_3xx}"
            )
        return cell
    except Exception as exc:
        return {"status": "error", "reason": f"{type(exc).__name__}: {exc}"}
    finally:
        procs.stop_since(mark)  # the system under test, even if its start failed


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description="wrk benchmark: nginx proxy vs aiohttp proxy vs tollway (loopback)."
    )
    p.add_argument("--quick", action="store_true", help="short cells: -d3s, 1 s warm-up")
    p.add_argument("--duration", type=int, default=None, help="seconds per cell (default 10)")
    p.add_argument("--warmup", type=int, default=None, help="discarded warm-up seconds (2)")
    p.add_argument("--threads", type=int, default=1, help="wrk -t (default 1)")
    p.add_argument("--connections", type=int, default=50, help="wrk -c (default 50)")
    p.add_argument(
        "--scenarios", default=",".join(SCENARIOS), help=f"comma list of {', '.join(SCENARIOS)}"
    )
    p.add_argument(
        "--systems", default=",".join(ALL_SYSTEMS), help=f"comma list of {', '.join(ALL_SYSTEMS)}"
    )
    p.add_argument(
        "--repeat", type=int, default=1, help="measured runs per cell; the median is kept (1)"
    )
    p.add_argument("--pinning", choices=sorted(PINNINGS), default="split", help="CPU layout")
    p.add_argument("--json", metavar="FILE", help="write all results (and raw wrk output) here")
    p.add_argument("--keep-tmp", action="store_true", help="keep the generated configs and logs")
    args = p.parse_args(argv)
    if args.duration is None:
        args.duration = 3 if args.quick else 10
    if args.warmup is None:
        args.warmup = 1 if args.quick else 2
    return args


def _select(value: str, known: dict[str, Any], what: str) -> list[str]:
    names = [n.strip() for n in value.split(",") if n.strip()]
    unknown = [n for n in names if n not in known]
    if unknown:
        sys.exit(f"bench: unknown {what}: {', '.join(unknown)} (known: {', '.join(known)})")
    return names


def _layout(name: str) -> dict[str, set[int]]:
    layout = PINNINGS[name]
    cpus = usable_cpus()
    if any(not c <= cpus for c in layout.values()):
        print(f"bench: pinning {name!r} needs CPUs 0-1; running unpinned", file=sys.stderr)
        return {}
    return layout


def chain_setup(scenario: Scenario) -> tuple[dict[str, str] | None, str | None]:
    """wrk's request headers for a chain scenario, and why the chain cannot run here (or None).

    Checked just before the scenario: the token needs PyJWT; the redis policy needs Redis
    answering on 127.0.0.1:6379 (else tollway's cell is `unavailable`, the others still run).
    """
    if not scenario.chain:
        return None, None
    try:
        headers = _chain.request_headers(_chain.make_token())
    except ImportError:
        return None, "PyJWT is not installed (pip install -e '.[dev]'): no token for the jwt plugin"
    if scenario.chain == "redis":
        reason = _chain.redis_unavailable_reason()
        if reason:
            return headers, reason
    return headers, None


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    scenario_names = _select(args.scenarios, SCENARIOS, "scenario")
    system_names = _select(args.systems, ALL_SYSTEMS, "system")
    ensure_tools()
    signal.signal(signal.SIGTERM, _on_sigterm)

    params = WrkParams(threads=args.threads, connections=args.connections, duration_s=args.duration)
    layout = _layout(args.pinning)
    info = machine_info()
    print(f"bench: {info['cpu']}, CPUs {info['cpus']}, Linux {info['kernel']}")
    wrk_version = info["wrk"].split(" Copyright")[0]
    print(f"bench: {info['nginx']}; {wrk_version}; aiohttp {info['aiohttp']}")
    print(
        f"bench: {params.describe()} x{args.repeat} (median kept) per cell after a "
        f"{args.warmup}s discarded warm-up; "
        f"pinning {args.pinning} {({k: sorted(v) for k, v in layout.items()})}"
    )

    systems: dict[str, System] = {n: ALL_SYSTEMS[n]() for n in system_names}
    unavailable = {n: s.unavailable_reason() for n, s in systems.items()}
    for n, reason in unavailable.items():
        if reason:
            print(f"bench: {n} unavailable: {reason}")

    workdir = Path(tempfile.mkdtemp(prefix="tollway-bench-"))
    procs = ProcessSet(workdir)
    script = workdir / "upload.lua"
    script.write_text(UPLOAD_LUA)
    results: dict[str, dict[str, dict[str, Any]]] = {}
    interrupted = False
    try:
        upstream = Upstream(workdir, max(SCENARIOS[n].targets for n in scenario_names))
        up_running = upstream.start(procs, layout.get("upstream"))
        print(f"bench: upstream nginx on {up_running.base_url}; workdir {workdir}")
        tls = None
        if any(SCENARIOS[n].tls for n in scenario_names):
            tls = make_tls_material(workdir)
            # The smoke checks (urllib) verify the proxies' certificate against this CA.
            os.environ["SSL_CERT_FILE"] = tls.ca
        for sc_name in scenario_names:
            scenario = SCENARIOS[sc_name]
            cells: dict[str, dict[str, Any]] = {}
            headers, chain_reason = chain_setup(scenario)
            for name, system in systems.items():
                reason = unavailable[name] or (chain_reason if system.runs_chain else None)
                if scenario.tls and not system.supports_tls:
                    reason = reason or "does not terminate TLS in this bench"
                if scenario.targets and not system.supports_targets:
                    reason = reason or "does not balance over targets in this bench"
                if reason:
                    cells[name] = {"status": "unavailable", "reason": reason}
                    continue
                print(f"bench: {sc_name} / {name} ...", flush=True)
                cells[name] = run_cell(
                    system,
                    scenario,
                    procs,
                    workdir,
                    upstream,
                    params,
                    args.warmup,
                    str(script) if scenario.upload else None,
                    layout,
                    args.repeat,
                    headers,
                    tls,
                )
                if cells[name].get("warning"):
                    print(f"bench:   warning: {cells[name]['warning']}")
                if not up_running.child.alive():
                    raise RuntimeError(f"upstream nginx died:\n{up_running.child.log_tail()}")
            results[sc_name] = cells
            print_scenario(scenario, cells)
    except KeyboardInterrupt:
        interrupted = True
        print("\nbench: interrupted; tearing down", file=sys.stderr)
    finally:
        procs.stop_all()
        if args.keep_tmp:
            print(f"bench: kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)

    scenarios = [SCENARIOS[n] for n in scenario_names if n in results]
    print_summary(scenarios, results, system_names)
    if args.json:
        doc = {
            "machine": info,
            "wrk": {
                **params.__dict__,
                "warmup_s": args.warmup,
                "repeat": args.repeat,
                "command": params.describe(),
            },
            "pinning": {"name": args.pinning, **{k: sorted(v) for k, v in layout.items()}},
            "systems": {n: s.description for n, s in systems.items()},
            "scenarios": {n: SCENARIOS[n].title for n in scenario_names},
            "results": results,
            "issue_3_ratios": _chain.issue_ratios(results),
            "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        }
        Path(args.json).write_text(json.dumps(doc, indent=2) + "\n")
        print(f"bench: wrote {args.json}")
    return 130 if interrupted else 0


if __name__ == "__main__":
    sys.exit(main())
