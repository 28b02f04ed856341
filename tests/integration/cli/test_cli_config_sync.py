"""`tollway config diff / sync / apply / dump / history / rollback / reset` against a real
node, on SQLite and on PostgreSQL."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from cli_node_support import DB_KINDS, CliNode, tollway

BASE: dict[str, Any] = {
    "_format_version": "3.0",
    "services": [
        {"name": "user-service", "url": "http://127.0.0.1:9/users", "retries": 3,
         "routes": [{"name": "users-list", "methods": ["GET"], "paths": ["/api/users"],
                     "strip_path": False}],
         "plugins": [{"name": "rate-limiting", "config": {"minute": 100, "policy": "local"}}]},
        {"name": "order-service", "url": "http://127.0.0.1:9/orders",
         "routes": [{"name": "orders-list", "methods": ["GET"], "paths": ["/api/orders"]}]},
    ],
    "consumers": [{"username": "alice", "keyauth_credentials": [{"key": "alice-secret-key"}]}],
    "plugins": [{"name": "correlation-id", "config": {"header_name": "X-Request-ID"}}],
}


@pytest.fixture(scope="module", params=DB_KINDS)
def gw(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
       ) -> Iterator[CliNode]:
    node = CliNode(tmp_path_factory.mktemp(f"cli-{request.param}"), request.param)
    try:
        yield node
    finally:
        node.stop()


@pytest.fixture(autouse=True)
def empty(gw: CliNode) -> None:
    r = gw.run("config", "reset", "--force")
    assert r.returncode == 0, r.stderr


def write(path: Path, doc: dict[str, Any]) -> str:
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return str(path)


def test_diff_sync_diff_shows_nothing_for_the_running_config(gw: CliNode, tmp_path: Path
                                                            ) -> None:
    f = write(tmp_path / "gw.yaml", BASE)
    r = gw.run("config", "diff", f, "--non-zero-exit-code")
    assert r.returncode == 2, r.stderr
    assert "creating service user-service" in r.stdout
    assert "creating plugin rate-limiting for service user-service" in r.stdout
    assert "creating plugin correlation-id (global)" in r.stdout
    assert "Created: 8" in r.stdout  # 2 services, 2 routes, 1 consumer, 1 key, 2 plugins
    before = gw.revision()
    r = gw.run("config", "sync", f, "--message", "first")
    assert r.returncode == 0, r.stderr
    after = gw.revision()
    assert after is not None and after != before
    assert f"Applied as revision {after}." in r.stdout
    r = gw.run("config", "diff", f, "--non-zero-exit-code")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "Created: 0\n  Updated: 0\n  Deleted: 0" in r.stdout
    assert "creating" not in r.stdout and "updating" not in r.stdout
    # a second sync of the same file changes nothing and stores no revision
    r = gw.run("config", "sync", f)
    assert r.returncode == 0 and "No changes" in r.stdout
    assert gw.revision() == after


def test_dump_sync_round_trip_has_no_drift(gw: CliNode, tmp_path: Path) -> None:
    f = write(tmp_path / "gw.yaml", BASE)
    assert gw.run("config", "sync", f).returncode == 0
    rev = gw.revision()
    for flags in ([], ["--skip-defaults"], ["--with-id"]):
        out = tmp_path / f"dump{len(flags)}.yaml"
        r = gw.run("config", "dump", "-o", str(out), *flags)
        assert r.returncode == 0, r.stderr
        dumped = yaml.safe_load(out.read_text())
        # decK's nesting: routes and the rate limit under their service
        svc = next(s for s in dumped["services"] if s["name"] == "user-service")
        assert [r["name"] for r in svc["routes"]] == ["users-list"]
        assert svc["plugins"][0]["name"] == "rate-limiting"
        assert dumped["consumers"][0]["keyauth_credentials"][0]["key"] == "alice-secret-key"
        assert [s["name"] for s in dumped["services"]] == ["order-service", "user-service"]
        assert ("id" in svc) == ("--with-id" in flags)
        r = gw.run("config", "diff", str(out), "--non-zero-exit-code")
        assert r.returncode == 0, r.stdout
        r = gw.run("config", "sync", str(out))
        assert r.returncode == 0 and gw.revision() == rev


def test_diff_shows_exactly_the_changed_fields(gw: CliNode, tmp_path: Path) -> None:
    assert gw.run("config", "sync", write(tmp_path / "a.yaml", BASE)).returncode == 0
    doc = yaml.safe_load(yaml.safe_dump(BASE))
    doc["services"][0]["retries"] = 7
    doc["services"][0]["plugins"][0]["config"]["minute"] = 250
    r = gw.run("config", "diff", write(tmp_path / "b.yaml", doc), "--non-zero-exit-code")
    assert r.returncode == 2
    lines = r.stdout.splitlines()
    assert "updating service user-service {" in lines
    assert "updating plugin rate-limiting for service user-service {" in lines
    changed = [ln for ln in lines if ln.startswith(("+", "-"))]
    assert changed == ['-  "retries": 3,', '+  "retries": 7,',
                       '-    "minute": 100,', '+    "minute": 250,']
    assert "Updated: 2" in r.stdout and "Created: 0" in r.stdout
    js = gw.run("config", "diff", str(tmp_path / "b.yaml"), "--json-output")
    report = json.loads(js.stdout)
    assert report["summary"] == {"creating": 0, "updating": 2, "deleting": 0, "total": 2}
    upd = {c["kind"]: c for c in report["changes"]["updating"]}
    assert upd["service"]["body"]["old"]["retries"] == 3
    assert upd["service"]["body"]["new"]["retries"] == 7


def test_secrets_and_substituted_values_are_masked(gw: CliNode, tmp_path: Path) -> None:
    doc = yaml.safe_load(yaml.safe_dump(BASE))
    doc["services"][0]["url"] = "http://${SECRET_HOST}/users"
    f = write(tmp_path / "t.yaml", doc)
    env = {"SECRET_HOST": "internal-host-42.example"}
    r = gw.run("config", "diff", f, "--json-output", env=env)
    assert r.returncode == 0, r.stderr
    assert "internal-host-42" not in r.stdout and "alice-secret-key" not in r.stdout
    assert "[masked]" in r.stdout
    assert gw.run("config", "sync", f, env=env).returncode == 0
    # what is stored is the value (templates are rendered client side)
    dumped = gw.run("config", "dump").stdout
    assert "internal-host-42.example" in dumped


def test_a_sync_that_fails_validation_changes_nothing(gw: CliNode, tmp_path: Path) -> None:
    assert gw.run("config", "sync", write(tmp_path / "ok.yaml", BASE)).returncode == 0
    rev = gw.revision()
    bad = yaml.safe_load(yaml.safe_dump(BASE))
    bad["services"][0]["routes"][0]["paths"] = ["no-slash"]
    bad["services"][1]["retries"] = 99  # a valid change beside the invalid one
    r = gw.run("config", "sync", write(tmp_path / "bad.yaml", bad))
    assert r.returncode == 1
    assert "services[0].routes[0].paths[0]" in r.stderr and "nothing was changed" in r.stderr
    assert gw.revision() == rev
    r = gw.run("config", "diff", str(tmp_path / "ok.yaml"), "--non-zero-exit-code")
    assert r.returncode == 0


def test_two_teams_with_select_tags_never_touch_each_other(gw: CliNode, tmp_path: Path
                                                           ) -> None:
    team_a = {"_format_version": "3.0", "services": [
        {"name": "a-svc", "url": "http://127.0.0.1:9", "routes": [
            {"name": "a-route", "paths": ["/a"]}]}]}
    team_b = {"_format_version": "3.0", "services": [
        {"name": "b-svc", "url": "http://127.0.0.1:9", "routes": [
            {"name": "b-route", "paths": ["/b"]}],
         "plugins": [{"name": "rate-limiting", "config": {"minute": 5}}]}]}
    fa, fb = write(tmp_path / "a.yaml", team_a), write(tmp_path / "b.yaml", team_b)
    assert gw.run("config", "sync", fa, "--select-tag", "team-a").returncode == 0
    r = gw.run("config", "sync", fb, "--select-tag", "team-b")
    assert r.returncode == 0 and "deleting" not in r.stdout, r.stdout
    # each team sees no drift in its own scope
    for f, tag in ((fa, "team-a"), (fb, "team-b")):
        r = gw.run("config", "diff", f, "--select-tag", tag, "--non-zero-exit-code")
        assert r.returncode == 0, r.stdout
    # team A removes its route and changes its service: team B's entities stay as they were
    team_a["services"][0]["routes"] = []
    team_a["services"][0]["retries"] = 1
    r = gw.run("config", "sync", write(tmp_path / "a2.yaml", team_a), "--select-tag", "team-a")
    assert r.returncode == 0
    assert "deleting route a-route" in r.stdout and "b-" not in r.stdout
    r = gw.run("config", "diff", fb, "--select-tag", "team-b", "--non-zero-exit-code")
    assert r.returncode == 0
    dump_b = yaml.safe_load(gw.run("config", "dump", "--select-tag", "team-b").stdout)
    assert dump_b["_info"] == {"select_tags": ["team-b"]}
    assert [s["name"] for s in dump_b["services"]] == ["b-svc"]
    assert dump_b["services"][0]["routes"][0]["name"] == "b-route"
    # team B cannot take over team A's service by naming it
    steal = {"_format_version": "3.0", "services": [{"name": "a-svc", "url": "http://x"}]}
    rev = gw.revision()
    r = gw.run("config", "sync", write(tmp_path / "steal.yaml", steal), "--select-tag",
               "team-b")
    assert r.returncode == 1 and "not managed by select tag" in r.stderr
    assert gw.revision() == rev
    # a reset in team B's scope leaves team A's service
    assert gw.run("config", "reset", "-f", "--select-tag", "team-b").returncode == 0
    full = yaml.safe_load(gw.run("config", "dump").stdout)
    assert [s["name"] for s in full["services"]] == ["a-svc"]


def test_apply_never_deletes(gw: CliNode, tmp_path: Path) -> None:
    assert gw.run("config", "sync", write(tmp_path / "a.yaml", BASE)).returncode == 0
    small = {"_format_version": "3.0", "services": [
        {"name": "extra", "url": "http://127.0.0.1:9"}]}
    r = gw.run("config", "apply", write(tmp_path / "s.yaml", small))
    assert r.returncode == 0 and "creating service extra" in r.stdout
    assert "deleting" not in r.stdout
    names = {s["name"] for s in yaml.safe_load(gw.run("config", "dump").stdout)["services"]}
    assert names == {"user-service", "order-service", "extra"}


def test_history_and_rollback_restore_the_previous_revision(gw: CliNode, tmp_path: Path
                                                            ) -> None:
    v1 = write(tmp_path / "v1.yaml", BASE)
    assert gw.run("config", "sync", v1, "-m", "v1").returncode == 0
    rev1 = gw.revision()
    v2doc = yaml.safe_load(yaml.safe_dump(BASE))
    v2doc["services"].pop()
    assert gw.run("config", "sync", write(tmp_path / "v2.yaml", v2doc), "-m", "v2"
                  ).returncode == 0
    r = gw.run("config", "history")
    assert r.returncode == 0, r.stderr
    assert " v2" in r.stdout and " v1" in r.stdout
    r = gw.run("config", "rollback", "--to", str(rev1), "-m", "back to v1")
    assert r.returncode == 0, r.stderr
    assert f"Rolled back to revision {rev1}" in r.stdout
    assert gw.revision() not in (None, rev1)  # a new revision, equal to v1
    r = gw.run("config", "diff", v1, "--non-zero-exit-code")
    assert r.returncode == 0, r.stdout
    rows = json.loads(gw.run("config", "history", "--json-output").stdout)
    assert rows[0]["message"] == "back to v1"
    assert gw.run("config", "rollback", "--to", "99999").returncode == 1


def test_exit_codes(gw: CliNode, tmp_path: Path) -> None:
    f = write(tmp_path / "gw.yaml", BASE)
    assert gw.run("config", "diff", f).returncode == 0  # drift, but no flag
    assert gw.run("config", "diff", f, "--non-zero-exit-code").returncode == 2
    assert gw.run("config", "diff", f, "--bogus-flag").returncode == 64
    assert gw.run("config", "rollback").returncode == 64  # --to missing
    down = tollway("config", "diff", f, "--admin-url", "http://127.0.0.1:1",
                   "--non-zero-exit-code")
    assert down.returncode == 1 and "cannot reach the admin API" in down.stderr
    missing = gw.run("config", "diff", str(tmp_path / "nope.yaml"), "--non-zero-exit-code")
    assert missing.returncode == 1 and "nope.yaml" in missing.stderr
    r = gw.run("config", "ping")
    assert r.returncode == 0 and "Successfully connected" in r.stdout


def test_stdin_and_several_files(gw: CliNode, tmp_path: Path) -> None:
    part1 = {"_format_version": "3.0", "services": [BASE["services"][0]]}
    part2 = {"_format_version": "3.0", "services": [BASE["services"][1]],
             "consumers": BASE["consumers"], "plugins": BASE["plugins"]}
    r = gw.run("config", "sync", write(tmp_path / "p1.yaml", part1),
               write(tmp_path / "p2.yaml", part2))
    assert r.returncode == 0, r.stderr
    r = gw.run("config", "diff", "-", "--non-zero-exit-code", input=yaml.safe_dump(BASE))
    assert r.returncode == 0, r.stdout + r.stderr
