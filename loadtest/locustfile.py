"""The seed's load test (api-gateway-workflows.md, "Load Testing") with a real token: the demo
consumer's JWT (examples/consumers.yaml), minted here with PyJWT from its key and secret.

    pip install -e '.[load]'
    make run &                                   # the seed's stack on 127.0.0.1:8000
    locust -f loadtest/locustfile.py --users 100 --spawn-rate 10

Expect 429s once a client passes the seed's limits (user-service 10/s and 100/min per
consumer): that is the seed's rate-limiting at work. docs/capacity.md is measured with wrk.
"""

import jwt
from locust import HttpUser, between, task

# examples/consumers.yaml: jwt_secrets key (the `iss` claim) and secret of consumer `demo`
DEMO_ISSUER = "demo-issuer"
DEMO_SECRET = "demo-secret-change-me-0123456789abcdef"


class GatewayLoadTest(HttpUser):
    wait_time = between(1, 3)
    host = "http://localhost:8000"

    @task(3)
    def get_users(self):
        """GET /api/users (3x weight)."""
        headers = {"Authorization": f"Bearer {self.get_token()}"}
        self.client.get("/api/users", headers=headers)

    @task(2)
    def get_orders(self):
        """GET /api/orders (2x weight)."""
        headers = {"Authorization": f"Bearer {self.get_token()}"}
        self.client.get("/api/orders", headers=headers)

    @task(1)
    def create_order(self):
        """POST /api/orders (1x weight)."""
        headers = {
            "Authorization": f"Bearer {self.get_token()}",
            "Content-Type": "application/json",
        }
        self.client.post(
            "/api/orders",
            json={"product_id": "prod_123", "quantity": 1},
            headers=headers,
        )

    def get_token(self):
        """Mint (once per user) an HS256 token the seed's jwt plugin accepts."""
        if not hasattr(self, "_token"):
            self._token = jwt.encode({"iss": DEMO_ISSUER, "sub": "demo"}, DEMO_SECRET,
                                     algorithm="HS256")
        return self._token
