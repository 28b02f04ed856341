# tests/test_integration.py
import httpx
import pytest


@pytest.fixture
def gateway_client(gateway_url):
    # tollway: the seed hard-codes http://localhost:8000; the suite starts its own gateway
    # (tests/seed/conftest.py) on a free port so it never collides with `make run`.
    return httpx.AsyncClient(base_url=gateway_url)

@pytest.mark.asyncio
async def test_user_service_route(gateway_client):
    """Test that user service is accessible through gateway."""
    response = await gateway_client.get("/api/users")
    assert response.status_code in [200, 401]  # 401 if auth required

@pytest.mark.asyncio
async def test_rate_limiting(gateway_client, demo_token):
    """Test that rate limiting is enforced."""
    responses = []

    # Make requests until rate limit is hit
    for i in range(150):
        # tollway: with a valid token. The seed sends none, but its jwt plugin (priority 1450)
        # answers 401 before rate-limiting (910) runs, in Kong as in tollway, so without a
        # token no request could ever reach the limit.
        response = await gateway_client.get(
            "/api/users", headers={"Authorization": f"Bearer {demo_token}"})
        responses.append(response.status_code)

    # Should have at least one 429 (Too Many Requests)
    assert 429 in responses

@pytest.mark.asyncio
async def test_cors_headers(gateway_client):
    """Test that CORS headers are present."""
    response = await gateway_client.options(
        "/api/users",
        # tollway: a browser's preflight also names the method it wants
        # (Access-Control-Request-Method); Kong's cors answers a preflight only then, and
        # DECISIONS.md #1 routes such a preflight to the route serving that method.
        headers={"Origin": "http://localhost:3000", "Access-Control-Request-Method": "GET"}
    )

    assert "Access-Control-Allow-Origin" in response.headers
    assert "Access-Control-Allow-Methods" in response.headers

@pytest.mark.asyncio
async def test_jwt_authentication(gateway_client):
    """Test JWT authentication."""
    # Without token
    response = await gateway_client.get("/api/users")
    assert response.status_code == 401

    # With invalid token
    response = await gateway_client.get(
        "/api/users",
        headers={"Authorization": "Bearer invalid_token"}
    )
    assert response.status_code == 401
