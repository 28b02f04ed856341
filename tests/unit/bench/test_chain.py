"""The bench's seed-chain scenarios (bench/_chain.py): config, token, checks, issue #3 ratios."""

from __future__ import annotations

import importlib.util
import socket
import sys
import threading
from email.message import Message
from pathlib import Path
from types import ModuleType
from typing import Any

import jwt as pyjwt
import pytest
import yaml

from tollway.config.loader import load_text


def _load_chain_module() -> ModuleType:
    # By file path, as test_wrk_parse.py does: `bench` is a script directory.
    path = Path(__file__).resolve().parents[3] / "bench" / "_chain.py"
    spec = importlib.util.spec_from_file_location("tollway_bench_chain", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


chain = _load_chain_module()


@pytest.mark.parametrize("policy", ["local", "redis"])
def test_config_is_the_seed_chain_and_tollway_accepts_it(policy: str) -> None:
    text = chain.tollway_chain_yaml(18080, policy)
    load_text(text, "bench.yaml")  # raises ConfigError on any problem
    doc = yaml.safe_load(text)
    (service,) = doc["services"]
    assert service["url"] == "http://127.0.0.1:18080"
    assert service["routes"] == [{"name": "r", "paths": ["/"], "strip_path": False}]
    plugins = {p["name"]: p["config"] for p in service["plugins"]}
    assert set(plugins) == {"jwt", "rate-limiting", "correlation-id", "prometheus"}
    assert plugins["jwt"] == {"key_claim_name": "iss", "secret_is_base64": False}
    rl = plugins["rate-limiting"]
    assert rl["policy"] == policy and rl["second"] >= 10_000_000
    if policy == "redis":
        assert (rl["redis_host"], rl["redis_port"]) == ("127.0.0.1", 6379)
    else:
        assert "redis_host" not in rl
    assert plugins["correlation-id"] == {
        "header_name": "X-Request-ID",
        "generator": "uuid",
        "echo_downstream": True,
    }
    assert plugins["prometheus"] == {"per_consumer": True}
    assert [p["name"] for p in doc["plugins"]] == ["cors"]
    assert chain.ORIGIN in doc["plugins"][0]["config"]["origins"]
    (cred,) = doc["consumers"][0]["jwt_secrets"]
    assert (cred["key"], cred["algorithm"], cred["secret"]) == (
        chain.JWT_ISS,
        "HS256",
        chain.JWT_SECRET,
    )


def test_config_rejects_unknown_policy() -> None:
    with pytest.raises(ValueError):
        chain.tollway_chain_yaml(1, "cluster")


def test_token_verifies_with_the_consumer_secret() -> None:
    assert len(chain.JWT_SECRET.encode()) >= 32
    token = chain.make_token()
    claims = pyjwt.decode(token, chain.JWT_SECRET, algorithms=["HS256"])
    assert claims["iss"] == chain.JWT_ISS
    headers = chain.request_headers(token)
    assert headers == {"Authorization": f"Bearer {token}", "Origin": chain.ORIGIN}


def _message(**headers: str) -> Message:
    msg = Message()
    for name, value in headers.items():
        msg[name.replace("_", "-")] = value
    return msg


def test_check_chain_response() -> None:
    ok = _message(
        x_request_id="1b4e28ba-2fa1-11d2-883f-0016d3cca427",
        x_ratelimit_limit_second="10000000",
        access_control_allow_origin=chain.ORIGIN,
    )
    assert chain.check_chain_response(200, ok) is None
    assert "HTTP 401" in chain.check_chain_response(401, ok)
    no_rl = _message(x_request_id="x", access_control_allow_origin=chain.ORIGIN)
    assert "X-RateLimit-Limit-Second" in chain.check_chain_response(200, no_rl)
    no_id = _message(x_ratelimit_limit_second="1", access_control_allow_origin=chain.ORIGIN)
    assert "X-Request-ID" in chain.check_chain_response(200, no_id)
    no_cors = _message(x_request_id="x", x_ratelimit_limit_second="1")
    assert "cors" in chain.check_chain_response(200, no_cors)


def _one_shot_server(reply: bytes | None) -> int:
    """A listener answering one connection with ``reply`` (or closing it at once)."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)

    def serve() -> None:
        conn, _ = srv.accept()
        with conn:
            if reply is not None:
                conn.recv(64)
                conn.sendall(reply)
        srv.close()

    threading.Thread(target=serve, daemon=True).start()
    return int(srv.getsockname()[1])


def test_redis_check() -> None:
    assert chain.redis_unavailable_reason("127.0.0.1", _one_shot_server(b"+PONG\r\n")) is None
    reason = chain.redis_unavailable_reason("127.0.0.1", _one_shot_server(b"-NOAUTH x\r\n"))
    assert reason is not None and "NOAUTH" in reason
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    reason = chain.redis_unavailable_reason("127.0.0.1", port, timeout_s=1)
    assert reason is not None and "does not answer" in reason


def _cell(rps: float) -> dict[str, Any]:
    return {"status": "ok", "wrk": {"requests_per_sec": rps}}


def test_issue_ratios() -> None:
    results = {
        "bare": {"nginx-proxy": _cell(40_000), "tollway": _cell(10_000)},
        "seed-chain": {"nginx-proxy": _cell(39_000), "tollway": _cell(8_000)},
        "seed-chain-redis": {"tollway": _cell(4_000)},
    }
    got = {r["label"]: r for r in chain.issue_ratios(results)}
    vs_nginx = got["seed-chain vs nginx bare proxy"]
    assert vs_nginx["ratio"] == pytest.approx(0.2) and vs_nginx["met"] is False
    vs_bare = got["seed-chain vs tollway bare proxy"]
    assert vs_bare["ratio"] == pytest.approx(0.8) and vs_bare["met"] is True
    redis = got["redis policy vs local policy"]
    assert redis["ratio"] == pytest.approx(0.5) and redis["met"] is False
    assert [r["minimum"] for r in chain.issue_ratios(results)] == [0.35, 0.7, 0.6]


def test_issue_ratios_name_the_missing_cells() -> None:
    results = {
        "seed-chain": {"tollway": _cell(8_000)},
        "seed-chain-redis": {"tollway": {"status": "unavailable", "reason": "no redis"}},
    }
    rows = chain.issue_ratios(results)
    assert all(r["ratio"] is None and r["met"] is None for r in rows)
    assert rows[0]["missing"] == "nginx-proxy bare"
    assert rows[1]["missing"] == "tollway bare"
    assert rows[2]["missing"] == "tollway seed-chain-redis"
