"""CPU time of the tollway worker per proxied request, user and system, under wrk.

Requests per second on a shared VM move with the machine; what one request costs the worker
moves less. This starts the bench upstream (nginx) and one tollway node per mode (`bare`,
`local`: the seed chain, `redis`: the chain with the redis policy), runs wrk against each in
turn for `--rounds` rounds, and divides the worker's CPU time (from /proc/<pid>/stat) by the
requests wrk completed; also the worker's involuntary context switches (preemptions) per
request. Same pinning, wrk parameters and configs as `bench/run.py`.

    .venv/bin/python bench/worker_cpu.py                       # bare and local, 3 rounds
    .venv/bin/python bench/worker_cpu.py --modes bare,local,redis --rounds 5

To compare two commits, run it twice, once with ``PYTHONPATH=<worktree of the other
commit>`` (its workers then import that tollway), as docs/performance.md describes.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import _chain
from bench._proc import PINNINGS, ProcessSet, pinner, usable_cpus
from bench._systems import Tollway, Upstream
from bench._wrk import WrkParams, run_wrk
from bench.run import ensure_tools

TICKS = os.sysconf("SC_CLK_TCK")


def worker_pid(supervisor: int) -> int:
    """The node's worker: the supervisor's last child (one worker per bench node)."""
    children: list[int] = []
    for task in Path(f"/proc/{supervisor}/task").iterdir():
        children += [int(x) for x in (task / "children").read_text().split()]
    if not children:
        sys.exit(f"worker_cpu: the node (pid {supervisor}) has no worker process")
    return children[-1]


def preemptions(pid: int) -> int:
    """Involuntary context switches of `pid` so far (its threads' sum): on the split layout
    mostly the upstream nginx, woken by a request, preempting the worker."""
    total = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        for line in (task / "status").read_text().splitlines():
            if line.startswith("nonvoluntary_ctxt_switches:"):
                total += int(line.split()[1])
    return total


def syscalls(pid: int) -> tuple[int, int]:
    """(read, write) system calls of `pid` so far (/proc/<pid>/io: syscr, syscw)."""
    io = dict(line.split(": ") for line in Path(f"/proc/{pid}/io").read_text().splitlines())
    return int(io["syscr"]), int(io["syscw"])


def cpu_seconds(pid: int) -> tuple[float, float]:
    """(user, system) CPU seconds of `pid` so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) / TICKS, int(fields[12]) / TICKS


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--modes", default="bare,local", help="comma-separated: bare, local, redis")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--duration", type=int, default=5, help="seconds of wrk per mode and round")
    args = p.parse_args(argv)
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    unknown = set(modes) - {"bare", *_chain.POLICIES}
    if unknown:
        sys.exit(f"worker_cpu: unknown modes: {', '.join(sorted(unknown))}")
    ensure_tools()
    layout = PINNINGS["split"] if all(c <= usable_cpus() for c in PINNINGS["split"].values()) \
        else {}
    headers = _chain.request_headers(_chain.make_token())
    params = WrkParams()
    with tempfile.TemporaryDirectory(prefix="tollway-worker-cpu-") as tmp:
        procs = ProcessSet(Path(tmp))
        try:
            upstream = Upstream(Path(tmp))
            upstream.start(procs, layout.get("upstream"))
            nodes = {}
            for mode in modes:
                run = Tollway().start(procs, Path(tmp), upstream.port, 1, layout.get("sut"),
                                      chain=None if mode == "bare" else mode)
                run_wrk(run.base_url + "/", params, duration_s=1,
                        preexec_fn=pinner(layout.get("wrk")), headers=headers)  # warm-up
                nodes[mode] = (run, worker_pid(run.child.proc.pid))
            # (user, system, req/s, preemptions, reads, writes) per round
            rows: dict[str, list[tuple[float, ...]]] = {m: [] for m in modes}
            for _ in range(args.rounds):
                for mode, (run, pid) in nodes.items():
                    user0, sys0 = cpu_seconds(pid)
                    pre0 = preemptions(pid)
                    reads0, writes0 = syscalls(pid)
                    result, _ = run_wrk(run.base_url + "/", params, duration_s=args.duration,
                                        preexec_fn=pinner(layout.get("wrk")), headers=headers)
                    user1, sys1 = cpu_seconds(pid)
                    pre1 = preemptions(pid)
                    reads1, writes1 = syscalls(pid)
                    if result.errors or not result.requests:
                        sys.exit(f"worker_cpu: {mode}: {result.errors} wrk errors")
                    n = result.requests
                    rows[mode].append(((user1 - user0) / n * 1e6, (sys1 - sys0) / n * 1e6,
                                       result.requests_per_sec, (pre1 - pre0) / n,
                                       (reads1 - reads0) / n, (writes1 - writes0) / n))
        finally:
            procs.stop_all()
    for mode, r in rows.items():
        user = statistics.median(x[0] for x in r)
        system = statistics.median(x[1] for x in r)
        rps = statistics.median(x[2] for x in r)
        pre = statistics.median(x[3] for x in r)
        reads = statistics.median(x[4] for x in r)
        writes = statistics.median(x[5] for x in r)
        print(f"{mode:6s} user {user:5.1f} us + system {system:5.1f} us = {user + system:5.1f} "
              f"us CPU per request (median of {len(r)}), {rps:,.0f} req/s, "
              f"{pre:.2f} preemptions, {reads:.2f} read and {writes:.2f} write system calls "
              "per request")


if __name__ == "__main__":
    main()
