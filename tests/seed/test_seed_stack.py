"""Beyond the seed's own tests: the stack they run against behaves as `make run` promises."""

from __future__ import annotations

import httpx
from node_support import Node
from seed_stack_support import flush_rate_limit_keys


def test_demo_token_is_accepted(seed_stack: Node, demo_token: str) -> None:
    """The seed's tests only ever see 401s from jwt; prove a valid token passes too."""
    flush_rate_limit_keys()  # test_integration's rate-limiting test used up the minute
    r = httpx.get(seed_stack.proxy_url + "/api/users",
                  headers={"Authorization": f"Bearer {demo_token}"})
    assert r.status_code == 200
    assert r.json()["total"] == 3


def test_seed_metrics_follow_the_seed_alert_names(seed_stack: Node, demo_token: str) -> None:
    """The seed's alerts query gateway_requests_total by status; the seed's user-service has
    prometheus with per_consumer, so an authenticated request is labelled with its consumer."""
    flush_rate_limit_keys()
    httpx.get(seed_stack.proxy_url + "/api/users",
              headers={"Authorization": f"Bearer {demo_token}"})
    text = httpx.get(seed_stack.admin_url + "/metrics").text
    assert 'gateway_requests_total{service="user-service",route="users-list",method="GET",' \
           'status="200",consumer="demo"}' in text
