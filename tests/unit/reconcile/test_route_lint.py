"""Router lint: shadowed routes and id-decided ties, judged with the router's own priorities;
no warning for configurations where every route can win."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tollway.config.declarative import validate
from tollway.config.loader import load_file
from tollway.reconcile.lint import lint_routes

ROOT = Path(__file__).resolve().parents[3]


def _lint(*routes: dict[str, Any]) -> list[Any]:
    doc = {"_format_version": "3.0",
           "services": [{"name": "svc", "url": "http://up:80", "routes": list(routes)}]}
    return lint_routes(validate(doc))


def test_identical_routes_tie_and_the_id_decides() -> None:
    warnings = _lint({"name": "a", "paths": ["/x"], "methods": ["GET"]},
                     {"name": "b", "paths": ["/x"], "methods": ["GET"]})
    assert len(warnings) == 1
    w = warnings[0]
    assert w.kind == "tie"
    # named routes get uuid5 ids: 'a' > 'b' here, so 'a' wins and 'b' is dead
    assert (w.route, w.by) == ("b", "a")
    assert "same priority" in w.message and "id is greater" in w.message


def test_prefix_route_fully_shadowed_by_a_higher_priority_route() -> None:
    # hosts + paths (weight 2) beats paths only, and /api covers /api/users
    warnings = _lint({"name": "broad", "paths": ["/api"], "hosts": ["a.com"]},
                     {"name": "narrow", "paths": ["/api/users"], "hosts": ["a.com"],
                      "methods": ["GET"]},
                     {"name": "dead", "paths": ["/api/users"], "hosts": ["a.com"],
                      "methods": ["GET"], "regex_priority": 5})
    assert [(w.kind, w.route, w.by) for w in warnings] == [("tie", "dead", "narrow")] or \
        [(w.kind, w.route, w.by) for w in warnings] == [("tie", "narrow", "dead")]
    warnings = _lint({"name": "wins", "paths": ["/api"], "methods": ["GET", "POST"],
                      "hosts": ["a.com"]},
                     {"name": "loses", "paths": ["/api/v1"]})
    assert warnings == []  # 'loses' still gets requests without Host a.com
    warnings = _lint({"name": "wins", "paths": ["/api"], "headers": {"x-v": ["1"]}},
                     {"name": "loses", "paths": ["/api/v1"], "headers": {"x-v": ["1"]},
                      "snis": ["a.com"], "protocols": ["https"]})
    assert warnings == []  # more conditions: higher weight, it wins
    warnings = _lint({"name": "wins", "hosts": ["a.com"], "paths": ["/"]},
                     {"name": "loses", "paths": ["/static"]},
                     {"name": "dead", "hosts": ["a.com"], "paths": ["~/metrics$"]})
    assert warnings == []  # a regex route beats a shorter prefix: both can win


def test_shadowed_by_strictly_higher_priority() -> None:
    warnings = _lint({"name": "all-methods", "paths": ["/a"], "hosts": ["h.com"]},
                     {"name": "get-only", "paths": ["/a/b"], "methods": ["GET"]})
    assert warnings == []
    warnings = _lint({"name": "winner", "paths": ["/a"], "hosts": ["h.com"],
                      "headers": {"x-team": ["blue"]}},
                     {"name": "never", "paths": ["/a/b"], "hosts": ["h.com"],
                      "headers": {"x-team": ["blue"]}})
    # same weight and header count: the longer prefix wins, nothing is dead
    assert warnings == []
    # the same regex with a higher regex_priority, and more methods: always wins
    warnings = _lint({"name": "winner", "paths": ["~/users/\\d+$"], "regex_priority": 10,
                      "methods": ["GET", "POST"], "headers": {"x-team": ["blue", "red"]}},
                     {"name": "never", "paths": ["~/users/\\d+$"], "methods": ["GET"],
                      "headers": {"x-team": ["blue"]}})
    assert [(w.kind, w.route, w.by) for w in warnings] == [("shadowed", "never", "winner")]
    assert "higher priority" in warnings[0].message


def test_regex_routes() -> None:
    # a regex path outranks any prefix path of the same weight: both can win
    assert _lint({"name": "prefix", "paths": ["/users"], "methods": ["GET"]},
                 {"name": "regex", "paths": ["~/users/\\d+$"], "methods": ["GET"]}) == []
    # same regex, same priority: a tie
    warnings = _lint({"name": "r1", "paths": ["~/users/\\d+$"]},
                     {"name": "r2", "paths": ["~/users/\\d+$"]})
    assert [w.kind for w in warnings] == ["tie"]
    # a different regex_priority separates them: the lower one is dead
    warnings = _lint({"name": "r1", "paths": ["~/users/\\d+$"], "regex_priority": 1},
                     {"name": "r2", "paths": ["~/users/\\d+$"]})
    assert [(w.kind, w.route, w.by) for w in warnings] == [("shadowed", "r2", "r1")]


def test_only_some_paths_of_a_route_are_dead() -> None:
    warnings = _lint({"name": "a", "paths": ["/x"], "methods": ["GET"]},
                     {"name": "b", "paths": ["/x", "/yy"], "methods": ["GET"]})
    assert len(warnings) == 1
    assert warnings[0].paths == ("/x",)
    assert "path(s) /x" in warnings[0].message


def test_hosts_and_wildcards_are_compared_conservatively() -> None:
    assert _lint({"name": "w", "hosts": ["*.example.com"], "paths": ["/"]},
                 {"name": "p", "hosts": ["api.example.com"], "paths": ["/"]}) == []
    # plain-host-only bit: the plain host route outranks the wildcard one, both live
    warnings = _lint({"name": "w", "hosts": ["*.example.com", "x.org"], "paths": ["/"],
                      "methods": ["GET"]},
                     {"name": "p", "hosts": ["*.example.com"], "paths": ["/v"],
                      "methods": ["GET"]})
    assert warnings == []  # /v is longer: p outranks w


def test_no_warning_for_the_seed_configuration() -> None:
    for name in ("gateway.yaml", "gateway-noplugins.yaml"):
        assert lint_routes(load_file(ROOT / "examples" / name)) == []
