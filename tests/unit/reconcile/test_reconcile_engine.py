"""Unit tests of tollway.reconcile on fixture states: templates, plan (identity matching,
select-tag scope, id reuse), output, dump nesting, JSONPath patches and tags, vault refs,
the Builder, route test's plugin chain."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from tollway.cli.commands.route import plugin_chain
from tollway.config.builder import Builder, BuildError
from tollway.config.declarative import validate
from tollway.reconcile.diff import PlanError, plan
from tollway.reconcile.dump import dump
from tollway.reconcile.files import FileError, load_state
from tollway.reconcile.jsonpath import JSONPathError, select
from tollway.reconcile.output import Masker, field_diff, render_text
from tollway.reconcile.patch import add_tags, apply_patch_file, list_tags, parse_values
from tollway.reconcile.templates import Environment, TemplateError, render
from tollway.reconcile.vault import VaultError, resolve_references

DOC: dict[str, Any] = {
    "_format_version": "3.0",
    "services": [{"name": "s1", "url": "http://a:1", "routes": [
        {"name": "r1", "paths": ["/r1"]}, {"paths": ["/unnamed"], "id":
                                           "8e9b6bb0-5f2b-4c8b-9d5c-0a0a0a0a0a0a"}],
        "plugins": [{"name": "rate-limiting", "config": {"minute": 10}}]}],
    "consumers": [{"username": "alice", "jwt_secrets": [{"key": "iss-a", "secret": "s3"}]}],
    "plugins": [{"name": "cors"}],
}


def cfg(doc: dict[str, Any]) -> Any:
    return validate(copy.deepcopy(doc))


def lines(p: Any) -> list[str]:
    out: list[str] = []
    render_text(p, Masker(), False, out.append)
    return out


def test_templates_shell_and_deck_syntax() -> None:
    env = Environment({"HOST": "h.example", "DECK_PORT": "81"})
    text = 'a: ${HOST}\nb: ${MISSING:-dflt}\nc: ${{ env "DECK_PORT" }}\n# ${NOPE}\nd: ~/x$\n'
    assert render(text, env) == "a: h.example\nb: dflt\nc: 81\n# ${NOPE}\nd: ~/x$\n"
    assert env.substituted == ["h.example", "81"]
    assert render('c: ${{ env "DECK_PORT" }}', env, mock=True) == "c: DECK_PORT"
    with pytest.raises(TemplateError, match="must be prefixed with 'DECK_', found: 'PORT'"):
        render('${{ env "PORT" }}', env)
    with pytest.raises(TemplateError, match=r"f:2: variable 'NOPE' is not set"):
        render("ok\n${NOPE}", env, source="f")


def test_environment_overlay_and_multiplier(tmp_path: Path) -> None:
    (tmp_path / "environments").mkdir()
    (tmp_path / "environments" / "prod.yaml").write_text(
        "vars: {HOST: prod.internal}\nrate_limit_multiplier: 2\n")
    base = tmp_path / "gw.yaml"
    base.write_text("_format_version: '3.0'\nservices:\n- name: s\n  url: http://${HOST}\n"
                    "  plugins:\n  - name: rate-limiting\n    config: {second: 3, minute: 10}\n")
    state = load_state([str(base)], env=Environment.load(str(base), "prod"))
    svc = state.config.entities["services"][0]
    assert svc["host"] == "prod.internal"
    conf = state.config.entities["plugins"][0]["config"]
    assert (conf["second"], conf["minute"]) == (6, 20)
    with pytest.raises(TemplateError, match="environment 'nope'"):
        Environment.load(str(base), "nope")


def test_info_select_tags_must_agree(tmp_path: Path) -> None:
    f = tmp_path / "a.yaml"
    f.write_text("_format_version: '3.0'\n_info: {select_tags: [a]}\n")
    assert load_state([str(f)]).select_tags == ["a"]
    with pytest.raises(FileError, match="are different"):
        load_state([str(f)], select_tags=["b"])


def test_plan_matches_by_identity_and_reuses_running_ids() -> None:
    current = cfg(DOC)
    assert plan(current, cfg(DOC)).events == []
    changed = copy.deepcopy(DOC)
    changed["services"][0]["retries"] = 2
    p = plan(current, cfg(changed))
    assert [(e.op, e.kind, e.name) for e in p.events] == [("update", "service", "s1")]
    assert lines(p)[:3] == ["updating service s1 {", '-  "retries": 5,', '+  "retries": 2,']
    # the running service's id is kept and the route still points at it
    target = validate(p.target)
    svc_id = current.entities["services"][0]["id"]
    assert target.entities["services"][0]["id"] == svc_id
    assert {r["service"]["id"] for r in target.entities["routes"]} == {svc_id}


def test_plan_orders_creates_top_down_and_deletes_bottom_up() -> None:
    p = plan(cfg({"_format_version": "3.0"}), cfg(DOC))
    kinds = [e.kind for e in p.events]
    assert kinds.index("consumer") < kinds.index("service") < kinds.index("route") < \
        kinds.index("plugin")
    back = plan(cfg(DOC), cfg({"_format_version": "3.0"}))
    kinds = [e.kind for e in back.events]
    assert kinds[0] == "plugin" and kinds[-1] in ("consumer", "service")
    assert back.target == {"_format_version": "3.0"}


def test_select_tag_scope_and_collision() -> None:
    other = {"_format_version": "3.0", "services": [
        {"name": "theirs", "url": "http://b", "tags": ["team-b"]}]}
    mine = {"_format_version": "3.0", "services": [{"name": "mine", "url": "http://a"}]}
    p = plan(cfg(other), cfg(mine), select_tags=["team-a"])
    assert [(e.op, e.name) for e in p.events] == [("create", "mine")]
    names = {s["name"]: s.get("tags") for s in p.target["services"]}
    assert names == {"theirs": ["team-b"], "mine": ["team-a"]}
    steal = {"_format_version": "3.0", "services": [{"name": "theirs", "url": "http://a"}]}
    with pytest.raises(PlanError, match="not managed by select tag"):
        plan(cfg(other), cfg(steal), select_tags=["team-a"])


def test_masking_of_secrets_and_env_values() -> None:
    current = cfg({"_format_version": "3.0"})
    p = plan(current, cfg(DOC))
    masker = Masker(["http://a:1"])
    cred = next(e for e in p.events if e.kind == "jwt-auth")
    assert masker.view(cred.entry)["secret"] == "[masked]"
    assert field_diff({"password": "x"}, {"password": "y"}) == [
        '-  "password": "x",', '+  "password": "y",']
    assert masker.text("url http://a:1/x") == "url [masked]/x"


def test_dump_nests_like_deck_and_round_trips() -> None:
    doc = copy.deepcopy(DOC)
    doc["plugins"].append({"name": "key-auth", "service": "s1", "route": "r1"})
    c = cfg(doc)
    out = dump(c)
    s1 = out["services"][0]
    assert [r.get("name") for r in s1["routes"]] == [None, "r1"]  # sorted by name then id
    assert "id" not in s1 and s1["routes"][0]["id"]  # unnamed route keeps its id
    assert s1["plugins"][0]["name"] == "rate-limiting" and "service" not in s1["plugins"][0]
    top = {p["name"]: p for p in out["plugins"]}
    assert top["key-auth"]["service"] == "s1" and top["key-auth"]["route"] == "r1"
    assert out["consumers"][0]["jwt_secrets"][0]["key"] == "iss-a"
    assert plan(c, validate(out)).events == []
    assert plan(c, validate(dump(c, skip_defaults=True))).events == []
    slim = dump(c, skip_defaults=True)["services"][0]
    assert "retries" not in slim and "connect_timeout" not in slim


def test_jsonpath_subset() -> None:
    d = copy.deepcopy(DOC)
    assert len(select(d, "$..plugins[?(@.name=='rate-limiting')].config")) == 1
    assert [s["name"] for s in select(d, "$.services[*]")] == ["s1"]
    assert len(select(d, "$..routes[*]")) == 2
    assert select(d, "$.services[0].routes[-1].paths[0]") == ["/unnamed"]
    assert len(select(d, "$..[?(@.name)]")) >= 3
    with pytest.raises(JSONPathError):
        select(d, "services")


def test_patch_file_and_values() -> None:
    d = copy.deepcopy(DOC)
    n = apply_patch_file(d, {"patches": [
        {"selectors": ["$..plugins[?(@.name=='rate-limiting')].config"],
         "values": {"minute": 5, "hour": None}},
        {"selectors": ["$.services[0].routes[0].paths"], "values": ["/more"]},
    ]})
    assert n == 2
    assert d["services"][0]["plugins"][0]["config"] == {"minute": 5}
    assert d["services"][0]["routes"][0]["paths"] == ["/r1", "/more"]
    assert parse_values(["a:1", "b:", 'c:"x"', '"z"']) == ({"a": 1, "b": None, "c": "x"},
                                                           ["z"])


def test_tags() -> None:
    d = copy.deepcopy(DOC)
    assert add_tags(d, ["t1"]) == 7  # service, 2 routes, 2 plugins, consumer, credential
    add_tags(d, ["t2"], ["$..routes[*]"])
    assert list_tags(d) == ["t1", "t2"]
    assert list_tags(d, ["$.consumers[*]"]) == ["t1"]


def test_vault_references(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    secret_file = tmp_path / "pw"
    secret_file.write_text("from-file\n")
    monkeypatch.setenv("REDIS_PASSWORD", "from-env")
    doc = copy.deepcopy(DOC)
    doc["consumers"][0]["jwt_secrets"][0]["secret"] = f"{{vault://file/{secret_file}}}"
    doc["services"][0]["plugins"][0]["config"]["redis"] = {
        "password": "{vault://env/redis-password}"}
    c = cfg(doc)
    r = resolve_references(c)
    assert r.entities["jwt_secrets"][0]["secret"] == "from-file"
    assert r.entities["plugins"][0]["config"]["redis"]["password"] == "from-env"
    assert c.entities["jwt_secrets"][0]["secret"].startswith("{vault://")  # untouched
    assert r.hash == c.hash
    assert resolve_references(cfg(DOC)) is not None
    monkeypatch.delenv("REDIS_PASSWORD")
    with pytest.raises(VaultError, match=r"plugins\[.*\]\.config\.redis\.password"):
        resolve_references(c)


def test_builder_validates_each_step_and_rolls_back(tmp_path: Path) -> None:
    b = Builder(tags=["gen"]).add_service("svc", "http://svc:8080", [
        {"name": "r", "paths": ["/svc"]}]).add_rate_limiting("svc", 100)
    with pytest.raises(BuildError) as info:
        b.add_route("svc", "bad", paths=["nope"])
    assert info.value.path == "services[0].routes[1].paths[0]"
    assert len(b.document()["services"][0]["routes"]) == 1  # the bad route is not kept
    with pytest.raises(KeyError):
        b.add_rate_limiting("nope", 1)
    b.add_consumer("alice", jwt_secrets=[{"key": "k", "secret": "s"}])
    b.export(tmp_path / "out" / "gw.yaml")
    c = load_state([str(tmp_path / "out" / "gw.yaml")]).config
    assert c.entities["plugins"][0]["config"]["minute"] == 100
    assert all("gen" in s["tags"] for s in c.entities["services"])


def test_route_test_plugin_chain_picks_the_most_specific() -> None:
    doc = copy.deepcopy(DOC)
    doc["plugins"].append({"name": "rate-limiting", "route": "r1", "config": {"minute": 3}})
    c = cfg(doc)
    route = next(r for r in c.entities["routes"] if r.get("name") == "r1")
    chain = {name: (p, scope) for name, _, p, scope in
             plugin_chain(c, route, c.entities["services"][0])}
    assert chain["rate-limiting"][1] == "route" and chain["rate-limiting"][0]["config"][
        "minute"] == 3
    assert chain["cors"][1] == "global"
