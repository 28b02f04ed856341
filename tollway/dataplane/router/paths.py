"""Request-path normalisation, v0 upstream-path joining and wire escaping.

These mirror Kong's ``kong/tools/uri.lua`` (``normalize``/``escape``) and
``kong/router/utils.lua`` (``sanitize_uri_postfix``/``get_upstream_uri_v0``),
see §2.2 and §2.6 of the Kong reference.

Paths are ``str``. Bytes that are not valid UTF-8 (from the wire or from
percent-decoding) are carried as lone surrogates (``surrogateescape``) so
that decoding and re-escaping round-trip byte for byte. Callers should
therefore decode the raw request target with ``utf-8``/``surrogateescape``.
"""

from __future__ import annotations

import re

__all__ = ["escape_path", "normalize_path", "upstream_path_v0"]

# RFC 3986 reserved characters (plus "%"): percent-encoded triplets of these
# keep their meaning, so normalisation must leave them encoded.
_RESERVED = frozenset(b"!*'();:@&=+$,/?%#[]")
_PCT_TRIPLET = re.compile(rb"%([0-9A-Fa-f]{2})")

# Everything outside this set is percent-encoded before the path goes upstream.
_WIRE_SAFE = frozenset(
    b"!#$&'()*+,/:;=?@[]-_.~%"
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
)
_NEEDS_ESCAPE = re.compile(r"[^!#$&'()*+,/:;=?@\[\]A-Za-z0-9\-_.~%]")
_ESCAPED_BYTE = tuple(
    chr(b) if b in _WIRE_SAFE else f"%{b:02X}" for b in range(256)
)


def _decode_triplet(m: re.Match[bytes]) -> bytes:
    code = int(m.group(1), 16)
    if code in _RESERVED:
        # Kong keeps reserved triplets encoded but upper-cases the hex digits.
        return m.group(0).upper()
    return bytes((code,))


def _percent_decode(path: str) -> str:
    raw = path.encode("utf-8", "surrogateescape")
    raw = _PCT_TRIPLET.sub(_decode_triplet, raw)
    return raw.decode("utf-8", "surrogateescape")


def _remove_dot_segments(uri: str) -> str:
    """RFC 3986 §5.2.4 dot-segment removal, also merging repeated slashes.

    Follows the same rewriting steps as Kong's ``normalize(uri, true)`` so
    that edge cases (``/..`` above the root, trailing ``/.``) agree.
    """
    out: list[str] = []
    while uri:
        if uri == "/." or uri == "/..":
            if uri == "/.." and out:
                out.pop()
            uri = "/"
        elif uri == "." or uri == "..":
            uri = ""
        elif uri.startswith("../"):
            uri = uri[3:]
        elif uri.startswith(("./", "/./")):
            uri = uri[2:]
        elif uri.startswith("/../"):
            uri = uri[3:]
            if out:
                out.pop()
        elif uri.startswith("//"):
            uri = uri[1:]
        else:
            cut = uri.find("/", 1)
            if cut < 0:
                out.append(uri)
                uri = ""
            else:
                out.append(uri[:cut])
                uri = uri[cut:]
    return "".join(out)


def normalize_path(path: str) -> str:
    """Normalise a request path (no query string) the way Kong's router sees it."""
    if path == "/" or not path:
        return path
    if "%" in path:
        path = _percent_decode(path)
    # Fast exit: nothing to resolve and nothing to merge.
    if "." not in path and "//" not in path:
        return path
    return _remove_dot_segments(path)


def escape_path(path: str) -> str:
    """Percent-encode every byte outside Kong's wire-safe set (§2.6, last paragraph)."""
    if _NEEDS_ESCAPE.search(path) is None:
        return path
    table = _ESCAPED_BYTE
    return "".join([table[b] for b in path.encode("utf-8", "surrogateescape")])


def _sanitize_postfix(postfix: str) -> str:
    if postfix == "." or postfix == "..":
        return ""
    if postfix.startswith("./"):
        return postfix[2:]
    if postfix.startswith("../"):
        return postfix[3:]
    return postfix


def upstream_path_v0(base: str, req: str, prefix: str | None, strip_path: bool) -> str:
    """Join ``service.path`` (``base``) and the normalised request path, v0 rules.

    ``prefix`` is the matched part of the path (configured prefix or text matched
    by the anchored regex) or None when the route matched without paths. Only
    used when ``strip_path`` is true, exactly like Kong.
    """
    if strip_path and prefix is not None:
        postfix = _sanitize_postfix(req[len(prefix):])
    else:
        postfix = _sanitize_postfix(req[1:])

    if base.endswith("/"):
        if not strip_path:
            return base + req[1:]
        if not postfix:
            if base == "/":
                return "/"
            return base if req.endswith("/") else base[:-1]
        if postfix[0] == "/":
            return base[:-1] + postfix
        return base + postfix

    if not strip_path:
        return base if req == "/" else base + req
    if not postfix:
        return base + "/" if len(req) > 1 and req.endswith("/") else base
    if postfix[0] == "/":
        return base + postfix
    return base + "/" + postfix
