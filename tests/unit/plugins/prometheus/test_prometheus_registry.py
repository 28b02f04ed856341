"""tollway.metrics: counters, gauges, histograms, the series cap, merging across workers and
the text format (checked with prometheus_client's parser and, if installed, promtool)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tollway import metrics
from tollway.metrics import Registry, merge, render

INSTALL_TOOLS = Path(__file__).resolve().parents[4] / "deploy" / "install-tools.sh"


def families(text: str) -> dict[str, dict[tuple[str, tuple[tuple[str, str], ...]], float]]:
    """name -> {(sample name, sorted labels): value}, via the reference parser."""
    out: dict[str, dict[tuple[str, tuple[tuple[str, str], ...]], float]] = {}
    for fam in text_string_to_metric_families(text):
        samples = out.setdefault(fam.name, {})
        for s in fam.samples:
            samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def test_counter_sums_per_label_tuple() -> None:
    reg = Registry()
    c = reg.counter("gateway_x_total", "x", ("a", "b"))
    c.inc(("1", "2"))
    c.inc(("1", "2"), 3)
    c.inc(("1", "3"))
    assert c.get(("1", "2")) == 4 and c.get(("1", "3")) == 1 and c.get(("9", "9")) == 0
    assert reg.counter("gateway_x_total", "x", ("a", "b")) is c  # shared by name


def test_same_name_other_labels_is_refused() -> None:
    reg = Registry()
    reg.counter("gateway_x_total", "x", ("a",))
    with pytest.raises(ValueError):
        reg.counter("gateway_x_total", "x", ("b",))
    with pytest.raises(ValueError):
        reg.gauge("gateway_x_total", "x", ("a",))


def test_series_cap_overflows_into_other() -> None:
    reg = Registry()
    c = reg.counter("gateway_x_total", "x", ("consumer", "route"), limit=3)
    for i in range(10):
        c.inc((f"c{i}", "r"))
    c.inc(("c0", "r"))  # an existing series keeps counting
    assert len(c.values) == 4
    assert c.get(("c0", "r")) == 2
    assert c.get(("other", "other")) == 7
    h = reg.histogram("gateway_h_seconds", "h", ("k",), limit=2)
    for i in range(5):
        h.observe((str(i),), 0.5)
    assert set(h.values) == {("0",), ("1",), ("other",)}
    assert h.values[("other",)][-1] == 1.5
    g = reg.gauge("gateway_g", "g", ("k",), limit=1)
    g.set(("a",), 1)
    g.set(("b",), 2)
    g.inc(("c",))
    assert g.values == {("a",): 1, ("other",): 3}


def test_histogram_buckets_are_le_and_cumulative() -> None:
    reg = Registry()
    h = reg.histogram("gateway_d_seconds", "d", ("route",), buckets=(0.1, 1.0, 10.0))
    for v in (0.05, 0.1, 0.5, 1.0, 2.0, 100.0):
        h.observe(("r",), v)
    got = families(reg.render())["gateway_d_seconds"]
    lab = (("route", "r"),)

    def bucket(le: str) -> float:
        return got[("gateway_d_seconds_bucket", (("le", le), *lab))]

    # le is inclusive: 0.1 falls in the 0.1 bucket, 1.0 in the 1 bucket; whole bounds are
    # printed as integers (as the Go client does): le="1", le="10".
    assert [bucket("0.1"), bucket("1"), bucket("10"), bucket("+Inf")] == [2, 4, 5, 6]
    assert got[("gateway_d_seconds_count", lab)] == 6
    assert got[("gateway_d_seconds_sum", lab)] == pytest.approx(103.65)


def test_default_buckets_span_1ms_to_60s() -> None:
    assert metrics.DURATION_BUCKETS[0] == 0.001 and metrics.DURATION_BUCKETS[-1] == 60
    assert list(metrics.DURATION_BUCKETS) == sorted(set(metrics.DURATION_BUCKETS))


def test_merge_sums_counters_and_histograms_and_aggregates_gauges() -> None:
    workers = []
    for n in (1, 2):
        reg = Registry()
        reg.counter("gateway_c_total", "c", ("k",)).inc(("a",), n)
        reg.counter("gateway_c_total", "c", ("k",)).inc((f"only{n}",))
        reg.histogram("gateway_h_seconds", "h", (), buckets=(1.0,)).observe((), n * 0.75)
        reg.gauge("gateway_conn", "g", ("state",)).set(("active",), 10 * n)
        metrics.set_circuit_breaker_state(reg, "svc", n - 1)
        reg.gauge("gateway_info", "i", ("hash",), aggregate="max").set((f"h{n}",), 1)
        workers.append(reg.export())
    merged = merge(workers)
    fam = families(render(merged))
    assert fam["gateway_c"][("gateway_c_total", (("k", "a"),))] == 3
    assert fam["gateway_c"][("gateway_c_total", (("k", "only1"),))] == 1
    assert fam["gateway_c"][("gateway_c_total", (("k", "only2"),))] == 1
    h = fam["gateway_h_seconds"]
    assert h[("gateway_h_seconds_bucket", (("le", "1"),))] == 1  # 0.75 in, 1.5 not
    assert h[("gateway_h_seconds_bucket", (("le", "+Inf"),))] == 2
    assert h[("gateway_h_seconds_sum", ())] == 2.25
    assert fam["gateway_conn"][("gateway_conn", (("state", "active"),))] == 30  # sum
    # max: open on any worker is open for the node
    assert fam["gateway_circuit_breaker_state"][
        ("gateway_circuit_breaker_state", (("service", "svc"),))] == 1
    assert set(fam["gateway_info"]) == {("gateway_info", (("hash", "h1"),)),
                                        ("gateway_info", (("hash", "h2"),))}
    assert merge([]) == {}
    assert render(merge([])) == ""


def test_upstream_target_health_one_hot() -> None:
    reg = Registry()
    metrics.set_upstream_target_health(reg, "up", "a:80", "10.0.0.1:80", "unhealthy")
    values = reg.metrics["gateway_upstream_target_health"].values
    assert {k[3]: v for k, v in values.items()} == {
        "healthchecks_off": 0, "healthy": 0, "unhealthy": 1, "dns_error": 0}
    with pytest.raises(ValueError):
        metrics.set_upstream_target_health(reg, "up", "a:80", "x", "sick")


def test_label_values_and_help_are_escaped() -> None:
    reg = Registry()
    reg.counter("gateway_e_total", 'help with \\ and\nnewline', ("v",)).inc(
        ('quote " backslash \\ newline \n é',))
    text = reg.render()
    assert 'v="quote \\" backslash \\\\ newline \\n é"' in text
    assert "# HELP gateway_e_total help with \\\\ and\\nnewline\n" in text
    fam = families(text)["gateway_e"]
    assert list(fam) == [("gateway_e_total", (("v", 'quote " backslash \\ newline \n é'),))]


def test_number_formatting() -> None:
    assert metrics.fmt_number(3) == "3"
    assert metrics.fmt_number(3.0) == "3"
    assert metrics.fmt_number(0.25) == "0.25"
    assert metrics.fmt_number(float("inf")) == "+Inf"
    assert metrics.fmt_number(float("nan")) == "NaN"


def _promtool() -> None:
    """promtool from deploy/install-tools.sh (Debian's prometheus) when missing; checked when
    the test runs, not at collection: a fresh machine installs it. Under CI=true a
    promtool that cannot be installed fails the test instead of skipping it."""
    if shutil.which("promtool") is None:
        subprocess.run(["bash", str(INSTALL_TOOLS)], capture_output=True, timeout=600,
                       check=False)
    if shutil.which("promtool") is None:
        if os.environ.get("CI") == "true":
            pytest.fail("CI=true and promtool is not installed (deploy/install-tools.sh)")
        pytest.skip("promtool not installed (deploy/install-tools.sh could not install it)")


def test_promtool_accepts_the_text() -> None:
    _promtool()
    reg = Registry()
    reg.counter("gateway_requests_total", "Requests", ("route", "status")).inc(("r", "200"))
    reg.histogram("gateway_request_duration_seconds", "Duration", ("route",)).observe(
        ("r",), 0.02)
    metrics.update_node_metrics(reg, {"active": 1}, "abc")
    metrics.set_circuit_breaker_state(reg, "svc", metrics.CIRCUIT_HALF_OPEN)
    proc = subprocess.run(["promtool", "check", "metrics"], input=reg.render().encode(),
                          capture_output=True, timeout=30)
    assert proc.returncode == 0, proc.stdout + proc.stderr
