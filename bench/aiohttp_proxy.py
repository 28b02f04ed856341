"""Reference system: the plain aiohttp reverse proxy a Python user would write.

* one ``aiohttp.web`` server, single process, the default asyncio event loop, access log off;
* one shared ``ClientSession`` with a keep-alive ``TCPConnector`` to the upstream;
* request and response bodies are streamed (``request.content`` is handed to the client as the
  request body; the upstream response is copied chunk by chunk into a ``StreamResponse``);
* hop-by-hop headers are dropped both ways;
* routing: a list of ``(prefix, upstream base URL)`` pairs scanned linearly, first match wins
  (the obvious thing to write; with ``--routes 10000`` the bench hits the *last* entry, so
  this is the worst case of a linear scan: 10,000 ``str.startswith`` calls per request).

Usage: ``python bench/aiohttp_proxy.py --port 8000 --upstream http://127.0.0.1:9000
[--routes 10000]``
"""

from __future__ import annotations

import argparse
from collections.abc import AsyncIterator

from aiohttp import ClientSession, ClientTimeout, TCPConnector, web
from multidict import CIMultiDict
from yarl import URL

HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "host",
    }
)

SESSION = web.AppKey("session", ClientSession)
ROUTES = web.AppKey("routes", list)


def build_routes(n_routes: int, upstream: str) -> list[tuple[str, str]]:
    if n_routes <= 1:
        return [("/", upstream)]
    return [(f"/route-{i:05d}", upstream) for i in range(n_routes)]


def match(routes: list[tuple[str, str]], path: str) -> str | None:
    """First route whose prefix starts ``path``; its upstream base URL."""
    for prefix, base in routes:
        if path.startswith(prefix):
            return base
    return None


async def proxy(request: web.Request) -> web.StreamResponse:
    base = match(request.app[ROUTES], request.path)
    if base is None:
        return web.json_response({"message": "no Route matched"}, status=404)

    headers = CIMultiDict(
        (k, v) for k, v in request.headers.items() if k.lower() not in HOP_BY_HOP
    )
    data = request.content if request.body_exists else None
    url = URL(base + request.raw_path, encoded=True)

    session: ClientSession = request.app[SESSION]
    async with session.request(
        request.method, url, headers=headers, data=data, allow_redirects=False
    ) as upstream:
        response = web.StreamResponse(status=upstream.status, reason=upstream.reason)
        for k, v in upstream.headers.items():
            if k.lower() not in HOP_BY_HOP:
                response.headers.add(k, v)
        await response.prepare(request)
        async for chunk in upstream.content.iter_any():
            await response.write(chunk)
        await response.write_eof()
        return response


def make_app(upstream: str, n_routes: int) -> web.Application:
    app = web.Application(client_max_size=4 * 1024 * 1024)
    app[ROUTES] = build_routes(n_routes, upstream.rstrip("/"))

    async def client_session(app: web.Application) -> AsyncIterator[None]:
        connector = TCPConnector(limit=256, keepalive_timeout=120)
        app[SESSION] = ClientSession(
            connector=connector,
            auto_decompress=False,
            timeout=ClientTimeout(total=None, sock_connect=5),
        )
        yield
        await app[SESSION].close()

    app.cleanup_ctx.append(client_session)
    app.router.add_route("*", "/{tail:.*}", proxy)
    return app


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--upstream", required=True, help="e.g. http://127.0.0.1:9000")
    parser.add_argument("--routes", type=int, default=1)
    args = parser.parse_args(argv)
    web.run_app(
        make_app(args.upstream, args.routes),
        host=args.host,
        port=args.port,
        access_log=None,
        print=None,
    )


if __name__ == "__main__":
    main()
