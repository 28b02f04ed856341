"""The systems the bench drives: the upstream, and the three proxies under test."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from bench import _chain, _nginx
from bench._proc import Managed, ProcessSet, free_port, wait_http_ok

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent


@dataclass
class Running:
    """A started system: its process and the base URL wrk should hit."""

    child: Managed
    base_url: str


class Upstream:
    """nginx, 1 worker: ``return 200`` + ~100 B JSON, and a static 1 MiB file."""

    def __init__(self, workdir: Path, n_targets: int = 0) -> None:
        self.prefix = workdir / "upstream"
        self.port = 0
        self.n_targets = n_targets
        # The targets-* scenarios' balancer targets: more listen ports of the same nginx.
        self.target_ports: list[int] = []

    def start(self, procs: ProcessSet, cpus: set[int] | None) -> Running:
        self.port = free_port()
        self.target_ports = [free_port() for _ in range(self.n_targets)]
        _nginx.write_download_file(self.prefix)
        _nginx.write_conf(
            self.prefix, _nginx.upstream_conf(self.prefix, self.port, self.target_ports)
        )
        child = procs.start("upstream-nginx", _nginx.nginx_command(self.prefix), cpus=cpus)
        base = f"http://127.0.0.1:{self.port}"
        wait_http_ok(base + "/", child, timeout_s=15)
        return Running(child, base)


@dataclass(frozen=True)
class TLSMaterial:
    """The TLS scenario's certificate, served by every system: an ECDSA P-256 leaf for
    127.0.0.1/localhost signed by a throw-away CA (``ca`` lets the smoke checks verify)."""

    ca: str
    cert: str
    key: str


def make_tls_material(workdir: Path) -> TLSMaterial:
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    folder = workdir / "tls"
    folder.mkdir(parents=True, exist_ok=True)
    now = datetime.datetime.now(datetime.UTC)
    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "tollway bench CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
          .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
          .not_valid_before(now - datetime.timedelta(days=1))
          .not_valid_after(now + datetime.timedelta(days=7))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .sign(ca_key, hashes.SHA256()))
    leaf = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
            .issuer_name(ca_name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=7))
            .add_extension(x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                critical=False)
            .sign(ca_key, hashes.SHA256()))
    pem = serialization.Encoding.PEM
    paths = TLSMaterial(str(folder / "ca.crt"), str(folder / "cert.crt"), str(folder / "cert.key"))
    Path(paths.ca).write_bytes(ca.public_bytes(pem))
    Path(paths.cert).write_bytes(leaf.public_bytes(pem))
    Path(paths.key).write_bytes(key.private_bytes(pem, serialization.PrivateFormat.PKCS8,
                                                  serialization.NoEncryption()))
    return paths


class System:
    """A proxy under test. ``start`` configures it for ``n_routes`` prefix routes.

    ``chain`` (a rate-limiting policy, ``"local"`` or ``"redis"``) asks for the seed's plugin
    chain (bench/_chain.py); only systems with ``runs_chain`` build it, the others run their
    plain proxy (the issue's reference is nginx's bare proxy).
    """

    name = "?"
    description = "?"
    runs_chain = False
    supports_tls = False  # can terminate TLS (the tls-* scenarios)
    supports_targets = False  # can balance over several targets (the targets-* scenarios)

    def unavailable_reason(self) -> str | None:
        """``None`` when the system can run here, else why not."""
        return None

    def start(
        self,
        procs: ProcessSet,
        workdir: Path,
        upstream_port: int,
        n_routes: int,
        cpus: set[int] | None,
        chain: str | None = None,
        tls: TLSMaterial | None = None,
        targets: list[int] | None = None,
    ) -> Running:
        raise NotImplementedError


def _probe_path(n_routes: int) -> str:
    return _nginx.route_paths(n_routes)[-1]


class NginxProxy(System):
    name = "nginx-proxy"
    supports_tls = True
    supports_targets = True
    description = (
        "nginx, worker_processes 1, upstream keepalive 128, proxy_http_version 1.1, "
        "proxy_request_buffering off, N prefix `location` blocks"
    )

    def start(
        self,
        procs: ProcessSet,
        workdir: Path,
        upstream_port: int,
        n_routes: int,
        cpus: set[int] | None,
        chain: str | None = None,
        tls: TLSMaterial | None = None,
        targets: list[int] | None = None,
    ) -> Running:
        tag = f"{n_routes}{'-tls' if tls else ''}{f'-targets{len(targets)}' if targets else ''}"
        prefix = workdir / f"nginx-proxy-{tag}"
        port = free_port()
        _nginx.write_conf(prefix, _nginx.proxy_conf(
            prefix, port, upstream_port, n_routes, (tls.cert, tls.key) if tls else None,
            targets))
        child = procs.start(prefix.name, _nginx.nginx_command(prefix), cpus=cpus)
        base = f"{'https' if tls else 'http'}://127.0.0.1:{port}"
        wait_http_ok(base + _probe_path(n_routes), child, timeout_s=30)
        return Running(child, base)


class AiohttpProxy(System):
    name = "aiohttp"
    description = (
        "bench/aiohttp_proxy.py: aiohttp.web + one shared ClientSession (keep-alive "
        "TCPConnector), streaming both ways, 1 process, default asyncio loop, linear prefix scan"
    )

    def unavailable_reason(self) -> str | None:
        try:
            import aiohttp  # noqa: F401
        except ImportError:
            return "aiohttp is not installed (pip install -e '.[dev]')"
        return None

    def start(
        self,
        procs: ProcessSet,
        workdir: Path,
        upstream_port: int,
        n_routes: int,
        cpus: set[int] | None,
        chain: str | None = None,
        tls: TLSMaterial | None = None,
        targets: list[int] | None = None,
    ) -> Running:
        port = free_port()
        cmd = [
            sys.executable,
            str(BENCH_DIR / "aiohttp_proxy.py"),
            "--port",
            str(port),
            "--upstream",
            f"http://127.0.0.1:{upstream_port}",
            "--routes",
            str(n_routes),
        ]
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        child = procs.start(f"aiohttp-{n_routes}", cmd, env=env, cpus=cpus)
        base = f"http://127.0.0.1:{port}"
        wait_http_ok(base + _probe_path(n_routes), child, timeout_s=30)
        return Running(child, base)


def tollway_config_yaml(upstream_port: int, n_routes: int) -> str:
    """Kong 3.0 declarative config: one service, ``n_routes`` prefix routes."""
    lines = [
        '_format_version: "3.0"',
        "services:",
        "  - name: bench",
        f"    url: http://127.0.0.1:{upstream_port}",
        "    routes:",
    ]
    if n_routes <= 1:
        lines += ["      - name: r", '        paths: ["/"]', "        strip_path: false"]
    else:
        for i, path in enumerate(_nginx.route_paths(n_routes)):
            lines += [
                f"      - name: r{i:05d}",
                f'        paths: ["{path}"]',
                "        strip_path: false",
            ]
    return "\n".join(lines) + "\n"


TARGETS_UPSTREAM = "bench-targets"


def tollway_targets_yaml(target_ports: list[int]) -> str:
    """Kong 3.0 declarative config: an ``upstreams`` entity with one target per port
    (round-robin, weight 100) and a service whose host is that upstream, 1 route ``/``."""
    lines = [
        '_format_version: "3.0"',
        "upstreams:",
        f"  - name: {TARGETS_UPSTREAM}",
        "    algorithm: round-robin",
        "    targets:",
        *(f"      - target: 127.0.0.1:{p}" for p in target_ports),
        "services:",
        "  - name: bench",
        f"    host: {TARGETS_UPSTREAM}",
        "    port: 80",
        "    protocol: http",
        "    routes:",
        "      - name: r",
        '        paths: ["/"]',
        "        strip_path: false",
    ]
    return "\n".join(lines) + "\n"


def find_tollway() -> str | None:
    found = shutil.which("tollway")
    if found:
        return found
    candidate = REPO_ROOT / ".venv" / "bin" / "tollway"
    return str(candidate) if candidate.exists() else None


class Tollway(System):
    name = "tollway"
    description = (
        "tollway start, TOLLWAY_WORKERS=1, TOLLWAY_DATABASE=off (declarative file), "
        "TOLLWAY_PROXY_ACCESS_LOG=off, TOLLWAY_UPSTREAM_KEEPALIVE_MAX_REQUESTS=0"
    )
    runs_chain = True
    supports_tls = True
    supports_targets = True

    def __init__(self) -> None:
        self.exe = find_tollway()

    def unavailable_reason(self) -> str | None:
        if not self.exe:
            return "no `tollway` executable on PATH or in .venv/bin (pip install -e .)"
        try:
            proc = subprocess.run(
                [self.exe, "start", "--help"],
                capture_output=True,
                text=True,
                timeout=30,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            return f"`tollway start --help` failed: {exc}"
        if proc.returncode != 0:
            err = (proc.stderr or proc.stdout).strip().splitlines()
            last = err[-1] if err else ""
            return f"`tollway start --help` exited {proc.returncode}: {last}"
        return None

    def start(
        self,
        procs: ProcessSet,
        workdir: Path,
        upstream_port: int,
        n_routes: int,
        cpus: set[int] | None,
        chain: str | None = None,
        tls: TLSMaterial | None = None,
        targets: list[int] | None = None,
    ) -> Running:
        assert self.exe is not None
        tag = (f"chain-{chain}" if chain else str(n_routes)) + ("-tls" if tls else "")
        tag += f"-targets{len(targets)}" if targets else ""
        prefix = workdir / f"tollway-{tag}"
        prefix.mkdir(parents=True, exist_ok=True)
        conf = prefix / "bench.yaml"
        probe_headers: dict[str, str] | None = None
        if chain:
            conf.write_text(_chain.tollway_chain_yaml(upstream_port, chain))
            probe_headers = _chain.request_headers(_chain.make_token())
        elif targets:
            conf.write_text(tollway_targets_yaml(targets))
        else:
            conf.write_text(tollway_config_yaml(upstream_port, n_routes))
        port, admin = free_port(), free_port()
        env = dict(
            os.environ,
            TOLLWAY_DATABASE="off",
            TOLLWAY_WORKERS="1",
            TOLLWAY_PROXY_LISTEN=f"127.0.0.1:{port}{' ssl' if tls else ''}",
            TOLLWAY_ADMIN_LISTEN=f"127.0.0.1:{admin}",
            TOLLWAY_PROXY_ACCESS_LOG="off",
            # Kong's default closes an upstream connection after 1000 requests; nginx-proxy's
            # pool has `keepalive_requests 10000000`. The same for both: no limit (0).
            TOLLWAY_UPSTREAM_KEEPALIVE_MAX_REQUESTS="0",
            TOLLWAY_PREFIX=str(prefix),
        )
        if tls:
            env.update(TOLLWAY_SSL_CERT=tls.cert, TOLLWAY_SSL_CERT_KEY=tls.key)
        child = procs.start(
            f"tollway-{tag}",
            [self.exe, "start", "--config", str(conf)],
            env=env,
            cpus=cpus,
            cwd=prefix,
        )
        wait_http_ok(f"http://127.0.0.1:{admin}/status", child, timeout_s=30)
        base = f"{'https' if tls else 'http'}://127.0.0.1:{port}"
        wait_http_ok(base + _probe_path(n_routes), child, timeout_s=10, headers=probe_headers)
        return Running(child, base)


ALL_SYSTEMS: dict[str, type[System]] = {
    NginxProxy.name: NginxProxy,
    AiohttpProxy.name: AiohttpProxy,
    Tollway.name: Tollway,
}
