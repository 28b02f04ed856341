"""nginx configurations for the upstream and for the nginx reverse-proxy reference.

Each nginx runs in the foreground from a generated prefix directory
(``nginx -p DIR -c DIR/nginx.conf -e DIR/error.log``) with every temp path inside DIR.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

# ~100 bytes of JSON, the upstream's answer to everything but the download file.
JSON_BODY = json.dumps(
    {
        "service": "bench-upstream",
        "status": "ok",
        "message": "hello from the upstream",
        "n": 12345,
    },
    separators=(",", ":"),
)
DOWNLOAD_PATH = "/1mib.bin"
DOWNLOAD_SIZE = 1024 * 1024
UPLOAD_SIZE = 1024 * 1024
UPLOAD_PATH = "/upload"
# The targets-* scenarios' upstream answers carry the port that served them (smoke check).
TARGET_HEADER = "X-Bench-Target"


def _common(prefix: Path) -> str:
    # `user root` only when we are root: a mkdtemp() prefix is 0700 and workers running as
    # nobody could not read it. The bench never binds anything but 127.0.0.1.
    user = "user root;\n" if _is_root() else ""
    return (
        f"{user}daemon off;\n"
        "master_process on;\n"
        f"pid {prefix}/nginx.pid;\n"
        f"error_log {prefix}/error.log warn;\n"
        "worker_rlimit_nofile 65536;\n"
        "events { worker_connections 8192; multi_accept on; }\n"
    )


def _temp_paths(prefix: Path) -> str:
    return "".join(
        f"    {kind}_temp_path {prefix}/tmp-{kind};\n"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )


def _is_root() -> bool:
    return os.geteuid() == 0


def upstream_conf(prefix: Path, port: int, target_ports: list[int] | None = None) -> str:
    """The upstream: ``return 200`` + JSON for every path, a static 1 MiB file for download.

    ``POST /upload`` (upload scenario) must read the whole body *before* answering, like an
    application would: a bare ``return 200`` answers at once and discards the body afterwards,
    and a proxy that streams the request body (nginx with ``proxy_request_buffering off``)
    then sees an early response and closes the client connection (wrk: read errors). So
    ``/upload`` uses ``mirror`` (precontent phase, reads the full body into memory:
    ``client_body_buffer_size 2m``), then the static handler answers the POST with 405, which
    ``error_page 405 =200 @json`` turns into the same 200 + JSON as everything else.

    ``keepalive_requests`` is raised so that nginx's default of 1000 does not close the
    proxies' pooled connections mid-run.
    """
    www = prefix / "www"
    return (
        _common(prefix)
        + "worker_processes 1;\n"
        + "http {\n"
        + _temp_paths(prefix)
        + "    access_log off;\n"
        + "    default_type application/json;\n"
        + "    sendfile on;\n"
        + "    tcp_nopush on;\n"
        + "    keepalive_requests 10000000;\n"
        + "    keepalive_timeout 120s;\n"
        + "    client_max_body_size 2m;\n"
        + "    client_body_buffer_size 2m;\n"
        + _targets_server(target_ports or [])
        + "    server {\n"
        + f"        listen 127.0.0.1:{port} backlog=4096;\n"
        + f"        location = {DOWNLOAD_PATH} {{\n"
        + f"            root {www};\n"
        + "            default_type application/octet-stream;\n"
        + "        }\n"
        + "        location = /_void { internal; return 204; }\n"
        + f"        location = {UPLOAD_PATH} {{\n"
        + "            mirror /_void;\n"
        + "            mirror_request_body on;\n"
        + f"            root {www};\n"
        + "            error_page 405 =200 @json;\n"
        + "        }\n"
        + "        location @json {\n"
        + f"            return 200 '{JSON_BODY}';\n"
        + "        }\n"
        + "        location / {\n"
        + f"            return 200 '{JSON_BODY}';\n"
        + "        }\n"
        + "    }\n"
        + "}\n"
    )


def _targets_server(ports: list[int]) -> str:
    """The targets-* scenarios' upstream: one more server on ``ports`` (the balancer's
    targets), the same JSON answer plus a header naming the port, so the smoke check can see
    requests spread. A server of its own keeps the other scenarios' responses unchanged."""
    if not ports:
        return ""
    listens = "".join(f"        listen 127.0.0.1:{p} backlog=4096;\n" for p in ports)
    return (
        "    server {\n"
        + listens
        + f"        add_header {TARGET_HEADER} $server_port;\n"
        + f"        location / {{ return 200 '{JSON_BODY}'; }}\n"
        + "    }\n"
    )


def write_download_file(prefix: Path) -> Path:
    www = prefix / "www"
    www.mkdir(parents=True, exist_ok=True)
    # The static file behind POST /upload (see upstream_conf); GET /upload returns it.
    (www / UPLOAD_PATH.lstrip("/")).write_text("upload\n")
    path = www / DOWNLOAD_PATH.lstrip("/")
    # Deterministic, incompressible-enough content.
    block = bytes(range(256)) * 16
    path.write_bytes(block * (DOWNLOAD_SIZE // len(block)))
    return path


def route_paths(n_routes: int) -> list[str]:
    """The route prefixes a scenario configures: ``/`` or ``/route-00000`` ... ."""
    if n_routes <= 1:
        return ["/"]
    return [f"/route-{i:05d}" for i in range(n_routes)]


def proxy_conf(prefix: Path, port: int, upstream_port: int, n_routes: int,
               tls: tuple[str, str] | None = None,
               target_ports: list[int] | None = None) -> str:
    """The nginx reference: 1 worker, HTTP/1.1 keep-alive pool to the upstream.

    With ``tls`` (certificate file, key file) the listener terminates TLS with that
    certificate: TLS 1.2/1.3, nginx's defaults otherwise (as tollway's ssl listener).

    Request bodies are streamed (``proxy_request_buffering off``); responses are buffered in
    memory only (``proxy_max_temp_file_size 0``: never spooled to disk), like the Python
    proxies, which stream with backpressure.

    With ``target_ports`` the ``upstream`` block has one ``server`` per port (round-robin,
    the same keepalive pool) instead of ``upstream_port``.
    """
    servers = "".join(
        f"        server 127.0.0.1:{p};\n" for p in (target_ports or [upstream_port])
    )
    locations = "".join(
        f"        location {p} {{ proxy_pass http://up; }}\n" for p in route_paths(n_routes)
    )
    return (
        _common(prefix)
        + "worker_processes 1;\n"
        + "http {\n"
        + _temp_paths(prefix)
        + "    access_log off;\n"
        + "    keepalive_requests 10000000;\n"
        + "    keepalive_timeout 120s;\n"
        + "    client_max_body_size 2m;\n"
        + "    upstream up {\n"
        + servers
        + "        keepalive 128;\n"
        + "        keepalive_requests 10000000;\n"
        + "        keepalive_timeout 120s;\n"
        + "    }\n"
        + "    server {\n"
        + f"        listen 127.0.0.1:{port}{' ssl' if tls else ''} backlog=4096;\n"
        + (f"        ssl_certificate {tls[0]};\n        ssl_certificate_key {tls[1]};\n"
           "        ssl_protocols TLSv1.2 TLSv1.3;\n" if tls else "")
        + "        proxy_http_version 1.1;\n"
        + '        proxy_set_header Connection "";\n'
        + "        proxy_set_header Host $host;\n"
        + "        proxy_request_buffering off;\n"
        + "        proxy_max_temp_file_size 0;\n"
        + locations
        + "    }\n"
        + "}\n"
    )


def write_conf(prefix: Path, text: str) -> Path:
    prefix.mkdir(parents=True, exist_ok=True)
    conf = prefix / "nginx.conf"
    conf.write_text(text)
    return conf


def nginx_command(prefix: Path) -> list[str]:
    return ["nginx", "-p", str(prefix), "-c", str(prefix / "nginx.conf"), "-e",
            str(prefix / "error.log")]
