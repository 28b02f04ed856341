"""Issue #3's ratios measured in interleaved rounds, for machines whose speed drifts.

`bench/run.py` measures one cell after another, so on a shared VM whose speed moves by tens
of percent from one minute to the next, a ratio of two cells measured a minute apart moves
with it. Here every system stays up and each round runs one short wrk per cell in turn
(nginx bare, tollway bare, tollway seed-chain, tollway seed-chain-redis); the ratios are
computed per round and the median round is reported. Same upstream, pinning (`split`), wrk
parameters and chain as `bench/run.py` (see docs/performance.md).

    .venv/bin/python bench/chain_ratio.py                 # 7 rounds of 3 s per cell
    .venv/bin/python bench/chain_ratio.py --rounds 11 --duration 5
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import _chain
from bench._proc import PINNINGS, ProcessSet, pinner, usable_cpus
from bench._systems import NginxProxy, Running, Tollway, Upstream
from bench._wrk import WrkParams, run_wrk
from bench.run import SCENARIOS, ensure_tools, smoke_check

CELLS = ("nginx bare", "tollway bare", "tollway seed-chain", "tollway seed-chain-redis")


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=7)
    p.add_argument("--duration", type=int, default=3, help="seconds of wrk per cell and round")
    args = p.parse_args(argv)
    ensure_tools()
    layout = PINNINGS["split"] if all(c <= usable_cpus() for c in PINNINGS["split"].values()) \
        else {}
    headers = _chain.request_headers(_chain.make_token())
    redis_reason = _chain.redis_unavailable_reason()
    params = WrkParams()
    with tempfile.TemporaryDirectory(prefix="tollway-chain-ratio-") as tmp:
        work = Path(tmp)
        procs = ProcessSet(work)
        try:
            upstream = Upstream(work)
            upstream.start(procs, layout.get("upstream"))
            cpus = layout.get("sut")
            tollway = Tollway()
            running: dict[str, Running] = {
                "nginx bare": NginxProxy().start(procs, work, upstream.port, 1, cpus),
                "tollway bare": tollway.start(procs, work, upstream.port, 1, cpus),
                "tollway seed-chain": tollway.start(procs, work, upstream.port, 1, cpus,
                                                    chain="local"),
            }
            if redis_reason is None:
                running["tollway seed-chain-redis"] = tollway.start(
                    procs, work, upstream.port, 1, cpus, chain="redis")
            else:
                print(f"chain_ratio: no redis cell: {redis_reason}")
            for name, run in running.items():
                chain = "chain" in name
                smoke_check(run.base_url, SCENARIOS["seed-chain" if chain else "bare"],
                            headers if chain else None, chain=chain)
                run_wrk(run.base_url + "/", params, duration_s=1,
                        preexec_fn=pinner(layout.get("wrk")), headers=headers)  # warm-up
            rows: dict[str, list[float]] = {name: [] for name in running}
            for r in range(args.rounds):
                for name, run in running.items():
                    result, _ = run_wrk(run.base_url + "/", params, duration_s=args.duration,
                                        preexec_fn=pinner(layout.get("wrk")), headers=headers)
                    if result.errors:
                        sys.exit(f"chain_ratio: {name}: {result.errors} wrk errors")
                    rows[name].append(result.requests_per_sec)
                print(f"round {r + 1}: " + ", ".join(f"{n} {rows[n][-1]:,.0f}" for n in rows),
                      flush=True)
        finally:
            procs.stop_all()
    ratios = {
        "seed-chain / nginx bare": (rows["tollway seed-chain"], rows["nginx bare"], 0.35),
        "seed-chain / tollway bare": (rows["tollway seed-chain"], rows["tollway bare"], 0.7),
        "tollway bare / nginx bare": (rows["tollway bare"], rows["nginx bare"], None),
    }
    if "tollway seed-chain-redis" in rows:
        ratios["redis / local chain"] = (rows["tollway seed-chain-redis"],
                                         rows["tollway seed-chain"], 0.6)
    print("\nmedian req/s: " + ", ".join(f"{n} {statistics.median(v):,.0f}"
                                         for n, v in rows.items()))
    for label, (top, bottom, target) in ratios.items():
        per_round = sorted(a / b for a, b in zip(top, bottom, strict=True))
        median = statistics.median(per_round)
        verdict = "" if target is None else (
            f"  target >= {target}: {'met' if median >= target else 'MISSED'}")
        print(f"{label:28s} median {median:.2f}x "
              f"(rounds {per_round[0]:.2f}-{per_round[-1]:.2f}){verdict}")


if __name__ == "__main__":
    main()
