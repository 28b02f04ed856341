"""TLS: the proxy's TLS listener (certificates chosen by SNI) and the client contexts of
https upstreams.

    listener context (default certificate, ALPN h2 / http/1.1)
        └── sni_callback ──► Certificates.lookup(server name) ──► per-certificate context

A `Certificates` map is built from a config's certificates and snis when the config is
swapped in (`ServerState.swap`), never per handshake. Contexts are cached by their PEM text,
so a swap that keeps a certificate keeps its context. Lookup follows Kong
(`kong/runloop/certificate.lua`): the exact name, then the name with its first label
replaced by `*` (`*.example.com`), then with its last label replaced (`www.example.*`), then
an SNI named `*`, then the default certificate.

The default certificate is `ssl_cert` / `ssl_cert_key` when set, else a self-signed one
generated once per node under `<prefix>/ssl/` (Kong's `kong-default.crt`).
"""

from __future__ import annotations

import ctypes
import datetime
import os
import ssl
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

if TYPE_CHECKING:
    from tollway.settings import Settings

DEFAULT_CERT = "tollway-default.crt"
DEFAULT_KEY = "tollway-default.key"
PROTOCOLS = {"TLSv1.1": ssl.TLSVersion.TLSv1_1, "TLSv1.2": ssl.TLSVersion.TLSv1_2,
             "TLSv1.3": ssl.TLSVersion.TLSv1_3}
ALPN_H2 = ["h2", "http/1.1"]


class TLSError(ValueError):
    """A TLS setting or certificate cannot be used; the message names it."""


# -- settings ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class ServerOptions:
    cert_file: str
    key_file: str
    min_version: ssl.TLSVersion
    max_version: ssl.TLSVersion
    ciphers: str


def server_options(settings: Settings) -> ServerOptions:
    """Read and check the TLS settings; generates the default certificate if needed."""
    values = settings.values
    words = values.get("ssl_protocols", "TLSv1.2 TLSv1.3").replace(",", " ").split()
    unknown = [w for w in words if w not in PROTOCOLS]
    if unknown or not words:
        raise TLSError(f"ssl_protocols: expected some of {', '.join(PROTOCOLS)}, "
                       f"got {values.get('ssl_protocols')!r}")
    versions = sorted(PROTOCOLS[w] for w in words)
    cert, key = default_certificate(settings)
    return ServerOptions(cert, key, versions[0], versions[-1],
                         values.get("ssl_ciphers", "").strip())


def default_certificate(settings: Settings) -> tuple[str, str]:
    """(certificate file, key file) served when no SNI matches."""
    values = settings.values
    cert = values.get("ssl_cert", "").strip()
    key = values.get("ssl_cert_key", "").strip()
    if cert or key:
        if not (cert and key):
            raise TLSError("ssl_cert and ssl_cert_key must be set together")
        try:
            ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER).load_cert_chain(cert, key)
        except (OSError, ssl.SSLError) as exc:
            raise TLSError(f"ssl_cert / ssl_cert_key ({cert}, {key}): {exc}") from None
        return cert, key
    folder = settings.prefix / "ssl"
    cert_path, key_path = folder / DEFAULT_CERT, folder / DEFAULT_KEY
    if not (cert_path.exists() and key_path.exists()):
        _generate(folder, cert_path, key_path)
    return str(cert_path), str(key_path)


def _generate(folder: Path, cert_path: Path, key_path: Path) -> None:
    """A self-signed ECDSA P-256 certificate for `localhost` (Kong's default is also
    CN=localhost). Written to temporary names then renamed, so workers starting together
    never read half a file; the last rename wins and both files come from one process."""
    folder.mkdir(parents=True, exist_ok=True)
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost"),
                      x509.NameAttribute(NameOID.ORGANIZATION_NAME, "tollway")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=3650))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), False)
            .sign(key, hashes.SHA256()))
    key_pem = key.private_bytes(serialization.Encoding.PEM,
                                serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    tag = f".{os.getpid()}.tmp"
    tmp_key, tmp_cert = key_path.with_name(key_path.name + tag), cert_path.with_name(
        cert_path.name + tag)
    fd = os.open(tmp_key, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(key_pem)
    tmp_cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    # Key first: a reader that sees the new certificate also sees its key.
    os.replace(tmp_key, key_path)
    os.replace(tmp_cert, cert_path)


# -- contexts ---------------------------------------------------------------------------------
def _load_pem(ctx: ssl.SSLContext, cert: str, key: str) -> None:
    """load_cert_chain only reads files: write the PEM to private temporary files (0600),
    load, delete."""
    paths = []
    try:
        for text in (cert, key):
            fd, path = tempfile.mkstemp(prefix="tollway-", suffix=".pem")
            paths.append(path)
            with os.fdopen(fd, "w") as f:
                f.write(text)
        ctx.load_cert_chain(paths[0], paths[1])
    finally:
        for path in paths:
            os.unlink(path)


def server_context(opts: ServerOptions, http2: bool = True) -> ssl.SSLContext:
    """A listener context with the default certificate (also the base of every
    per-certificate context: same protocols, ciphers and ALPN)."""
    ctx = _base_server_context(opts, http2)
    ctx.load_cert_chain(opts.cert_file, opts.key_file)
    return ctx


def _base_server_context(opts: ServerOptions, http2: bool) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = opts.min_version
    ctx.maximum_version = opts.max_version
    if opts.ciphers:
        try:
            ctx.set_ciphers(opts.ciphers)
        except ssl.SSLError:
            raise TLSError(f"ssl_ciphers: no cipher can be selected from "
                           f"{opts.ciphers!r}") from None
    ctx.options |= ssl.OP_CIPHER_SERVER_PREFERENCE
    # The ALPN choice is made after the SNI callback switched contexts, so every context
    # carries the same list.
    ctx.set_alpn_protocols(ALPN_H2 if http2 else ["http/1.1"])
    return ctx


class Certificates:
    """SNI name → server context for one config (see the module docstring for the order)."""

    def __init__(self, entities: Mapping[str, list[dict[str, Any]]], opts: ServerOptions,
                 http2: bool = True, cache: Mapping[tuple[str, ...], ssl.SSLContext] = {},
                 ) -> None:
        self.contexts: dict[str, ssl.SSLContext] = {}
        self.by_cert: dict[tuple[str, ...], ssl.SSLContext] = {}
        certs = {c["id"]: c for c in entities.get("certificates", ())}
        for sni in entities.get("snis", ()):
            ref = sni.get("certificate")
            cert_id = ref.get("id") if isinstance(ref, dict) else ref
            cert = certs.get(cert_id)
            if cert is None:
                raise TLSError(f"sni {sni['name']!r}: certificate {cert_id} not found")
            key = (cert["cert"], cert["key"], cert.get("cert_alt") or "",
                   cert.get("key_alt") or "")
            ctx = self.by_cert.get(key) or cache.get(key)
            if ctx is None:
                ctx = _base_server_context(opts, http2)
                try:
                    _load_pem(ctx, cert["cert"], cert["key"])
                    if cert.get("cert_alt"):
                        # A second key type (RSA + ECDSA): OpenSSL keeps both and serves
                        # the one the client's signature algorithms allow.
                        _load_pem(ctx, cert["cert_alt"], cert["key_alt"])
                except ssl.SSLError as exc:
                    raise TLSError(f"certificate {cert['id']}: {exc}") from None
            self.by_cert[key] = ctx
            self.contexts[_normalise(sni["name"])] = ctx

    def lookup(self, name: str | None) -> ssl.SSLContext | None:
        """The context for a server name, None for the default certificate."""
        if not name or not self.contexts:
            return None
        contexts = self.contexts
        name = _normalise(name)
        ctx = contexts.get(name)
        if ctx is not None:
            return ctx
        dot = name.find(".")
        if dot > 0:
            ctx = contexts.get("*" + name[dot:])
            if ctx is not None:
                return ctx
        dot = name.rfind(".")
        if dot > 0:
            ctx = contexts.get(name[:dot + 1] + "*")
            if ctx is not None:
                return ctx
        return contexts.get("*")


def _normalise(name: str) -> str:
    name = name.lower()
    return name[:-1] if name.endswith(".") and len(name) > 1 else name


def install_sni_callback(ctx: ssl.SSLContext, current: Any) -> None:
    """`current()` returns the Certificates of the config being served. The server name is
    kept on the SSL object (`tollway_sni`) for the router's `snis` condition."""

    def on_sni(sslobj: Any, name: str | None, _ctx: ssl.SSLContext) -> None:
        try:
            sslobj.tollway_sni = name
        except AttributeError:
            pass
        chosen = current().lookup(name)
        if chosen is not None:
            sslobj.context = chosen
        return None

    ctx.sni_callback = on_sni


# -- https upstreams --------------------------------------------------------------------------
_INSECURE: ssl.SSLContext | None = None
_CLIENT_CACHE: dict[tuple[Any, ...], ssl.SSLContext] = {}


def client_context(verify: bool | None, depth: int | None = None,
                   ca_certs: Iterable[str] = (),
                   client_cert: tuple[str, str] | None = None) -> ssl.SSLContext:
    """The context of an https upstream: `verify` (tls_verify; null is Kong's default
    proxy_ssl_verify off), `depth` (tls_verify_depth), the PEM text of `ca_certificates`
    (when given, the only trusted CAs; else the system store) and the PEM certificate and
    key of `client_certificate`. Cached: services with the same TLS settings share one."""
    global _INSECURE
    cas = tuple(ca_certs)
    key = (bool(verify), depth, cas, client_cert)
    ctx = _CLIENT_CACHE.get(key)
    if ctx is not None:
        return ctx
    if not verify and depth is None and not client_cert:
        if _INSECURE is None:
            _INSECURE = _insecure()
        return _INSECURE
    if verify:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        if cas:
            ctx.load_verify_locations(cadata="\n".join(cas))
        else:
            ctx.load_default_certs()
        if depth is not None:
            set_verify_depth(ctx, depth)
    else:
        ctx = _insecure()
    if client_cert is not None:
        _load_pem(ctx, *client_cert)
    if len(_CLIENT_CACHE) > 1000:
        _CLIENT_CACHE.clear()
    _CLIENT_CACHE[key] = ctx
    return ctx


def _insecure() -> ssl.SSLContext:
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def service_context(svc: Mapping[str, Any],
                    entities: Mapping[str, list[dict[str, Any]]]) -> ssl.SSLContext:
    """`client_context` for a service entity, its references resolved in `entities`.
    Raises TLSError naming the service and the missing entity."""
    label = svc.get("name") or svc.get("id")
    cas = []
    if svc.get("ca_certificates"):
        by_id = {c["id"]: c["cert"] for c in entities.get("ca_certificates", ())}
        for ca_id in svc["ca_certificates"]:
            if ca_id not in by_id:
                raise TLSError(f"service {label}: ca_certificate {ca_id} not found")
            cas.append(by_id[ca_id])
    client = None
    ref = svc.get("client_certificate")
    if ref:
        cert_id = ref.get("id") if isinstance(ref, dict) else ref
        cert = next((c for c in entities.get("certificates", ()) if c["id"] == cert_id), None)
        if cert is None:
            raise TLSError(f"service {label}: client_certificate {cert_id} not found")
        client = (cert["cert"], cert["key"])
    depth = svc.get("tls_verify_depth")
    return client_context(svc.get("tls_verify"), depth if depth is not None else None,
                          cas, client)


_libssl: Any = None


def set_verify_depth(ctx: ssl.SSLContext, depth: int) -> None:
    """SSL_CTX_set_verify_depth, which Python's ssl module does not expose (nginx's
    proxy_ssl_verify_depth). The SSL_CTX pointer is the first field after the object
    header of CPython's PySSLContext; the function comes from the libssl _ssl is linked
    against."""
    global _libssl
    if _libssl is None:
        import _ssl
        _libssl = ctypes.CDLL(_ssl.__file__)
        _libssl.SSL_CTX_set_verify_depth.argtypes = [ctypes.c_void_p, ctypes.c_int]
        _libssl.SSL_CTX_set_verify_depth.restype = None
        _libssl.SSL_CTX_get_verify_depth.argtypes = [ctypes.c_void_p]
        _libssl.SSL_CTX_get_verify_depth.restype = ctypes.c_int
    header = ctypes.sizeof(ctypes.c_ssize_t) + ctypes.sizeof(ctypes.c_void_p)
    ptr = ctypes.c_void_p.from_address(id(ctx) + header).value
    _libssl.SSL_CTX_set_verify_depth(ptr, depth)
    if _libssl.SSL_CTX_get_verify_depth(ptr) != depth:  # the layout was not what we think
        raise TLSError("tls_verify_depth: cannot be applied with this Python build")
