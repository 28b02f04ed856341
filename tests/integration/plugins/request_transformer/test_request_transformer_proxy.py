"""request-transformer through real sockets: what the upstream receives."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from dataplane_helpers import Gateway, RawClient, Upstream


def doc(url: str, config: dict[str, Any], paths: list[str] | None = None) -> dict[str, Any]:
    return {
        "_format_version": "3.0",
        "services": [{"name": "svc", "url": url, "routes": [
            {"name": "r", "paths": paths or ["/"]}]}],
        "plugins": [{"name": "request-transformer", "config": config}],
    }


def run(make_upstream: Callable[..., Upstream], make_gateway: Callable[..., Gateway],
        make_client: Callable[..., RawClient], config: dict[str, Any], target: str = "/p",
        headers: list[tuple[str, str]] | None = None, method: str = "GET",
        paths: list[str] | None = None) -> Any:
    up = make_upstream()
    gw = make_gateway(doc(up.url, config, paths))
    resp = make_client(gw.port).request(method, target, headers)
    assert resp.status == 200, resp.body
    assert len(up.requests) == 1
    return up.requests[0]


def test_headers_remove_rename_replace_add_append(make_upstream: Any, make_gateway: Any,
                                                  make_client: Any) -> None:
    config = {
        "remove": {"headers": ["x-gone"]},
        "rename": {"headers": ["x-old:x-new"]},
        "replace": {"headers": ["x-rep:replaced", "x-absent-rep:nope"]},
        "add": {"headers": ["x-add:added", "x-keep:not-used"]},
        "append": {"headers": ["x-app:two", "x-fresh:f"]},
    }
    req = run(make_upstream, make_gateway, make_client, config, headers=[
        ("X-Gone", "1"), ("X-Old", "o"), ("X-Rep", "r"), ("X-Keep", "k"), ("X-App", "one")])
    assert req.header("x-gone") is None
    assert req.header("x-old") is None and req.header("x-new") == "o"
    assert req.header("x-rep") == "replaced"
    assert req.header("x-absent-rep") is None  # replace only touches present headers
    assert req.header("x-add") == "added"
    assert req.header("x-keep") == "k"  # add never overwrites
    assert req.all("x-app") == ["one", "two"]
    assert req.all("x-fresh") == ["f"]


def test_replace_host_header(make_upstream: Any, make_gateway: Any, make_client: Any) -> None:
    req = run(make_upstream, make_gateway, make_client,
              {"replace": {"headers": ["host:changed.example"]}})
    assert req.header("host") == "changed.example"


def test_querystring_operations_sorted_and_encoded(make_upstream: Any, make_gateway: Any,
                                                   make_client: Any) -> None:
    config = {
        "remove": {"querystring": ["drop"]},
        "rename": {"querystring": ["old:new"]},
        "replace": {"querystring": ["rep:hello world"]},
        "add": {"querystring": ["add:1", "keep:no"]},
        "append": {"querystring": ["multi:b"]},
    }
    req = run(make_upstream, make_gateway, make_client, config,
              target="/p?zed=1&drop=x&old=o&rep=r&keep=k&multi=a")
    assert req.target == "/p?add=1&keep=k&multi=a&multi=b&new=o&rep=hello%20world&zed=1"


def test_no_query_config_keeps_query_as_is(make_upstream: Any, make_gateway: Any,
                                           make_client: Any) -> None:
    req = run(make_upstream, make_gateway, make_client, {"add": {"headers": ["x-a:1"]}},
              target="/p?b=2&a=1")
    assert req.target == "/p?b=2&a=1"


def test_replace_uri_and_method(make_upstream: Any, make_gateway: Any,
                                make_client: Any) -> None:
    req = run(make_upstream, make_gateway, make_client,
              {"http_method": "POST", "replace": {"uri": "/new/path"}}, target="/p?q=1")
    assert req.method == "POST"
    assert req.target == "/new/path?q=1"


def test_templates_from_headers_query_and_captures(make_upstream: Any, make_gateway: Any,
                                                   make_client: Any) -> None:
    config = {
        "add": {"headers": ["x-from-header:$(headers.x_api_key)",
                            "x-from-query:q=$(query_params.page)",
                            "x-missing:$(headers.nope)",
                            "x-default:$(headers.nope or 'dflt')"]},
        "replace": {"uri": "/users/$(uri_captures.id)"},
    }
    req = run(make_upstream, make_gateway, make_client, config, target="/u/42?page=7",
              headers=[("X-Api-Key", "secret")], paths=[r"~/u/(?<id>\d+)$"])
    assert req.header("x-from-header") == "secret"
    assert req.header("x-from-query") == "q=7"
    assert req.header("x-missing") == "nil"
    assert req.header("x-default") == "dflt"
    assert req.target.startswith("/users/42")
