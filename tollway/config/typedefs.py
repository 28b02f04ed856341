"""Kong's common field types (``kong/db/schema/typedefs.lua``) for the schema engine."""

from __future__ import annotations

import ipaddress
import re
from typing import Any

from tollway.config.schema import Field

PROTOCOLS = ["grpc", "grpcs", "http", "https", "tcp", "tls", "tls_passthrough", "udp"]

# -- host / ip helpers ------------------------------------------------------------------

_HOSTNAME = re.compile(r"^[A-Za-z0-9_](?:[A-Za-z0-9_-]*[A-Za-z0-9_])?$")


def is_ip(value: str) -> bool:
    try:
        ipaddress.ip_address(value.strip("[]") if value.startswith("[") else value)
    except ValueError:
        return False
    return True


def is_hostname(value: str) -> bool:
    name = value[:-1] if value.endswith(".") else value
    if not name or len(name) > 253:
        return False
    return all(len(label) <= 63 and _HOSTNAME.match(label) for label in name.split("."))


def split_host_port(value: str) -> tuple[str, str | None] | None:
    """``host[:port]`` → (host, port string or None); None when malformed.

    Bare IPv6 addresses (several colons) have no port; a port needs brackets.
    """
    if value.startswith("["):
        end = value.find("]")
        if end < 0:
            return None
        host, rest = value[: end + 1], value[end + 1 :]
        if not rest:
            return host, None
        if not rest.startswith(":"):
            return None
        return host, rest[1:]
    if value.count(":") == 1:
        host, port = value.split(":")
        return host, port
    return value, None


def _valid_port(port: str) -> bool:
    return port.isdigit() and 0 <= int(port) <= 65535


def _host_kind(host: str) -> str | None:
    """'ipv4' / 'ipv6' / 'name', or None when the text is neither."""
    bare = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    try:
        ip = ipaddress.ip_address(bare)
    except ValueError:
        if host.startswith("["):
            return None
        # dotted-quad look-alikes like 300.1.1.1 are bad IPs, not names
        if re.fullmatch(r"[0-9.]+", host):
            return None
        return "name" if is_hostname(host) else None
    return "ipv4" if ip.version == 4 else "ipv6"


def validate_host(value: str) -> str | None:
    parts = split_host_port(value)
    if parts is None or _host_kind(parts[0]) is None:
        return f"invalid value: {value}"
    if parts[1] is not None:
        return "must not have a port"
    return None


def validate_host_with_optional_port(value: str) -> str | None:
    parts = split_host_port(value)
    if parts is None or _host_kind(parts[0]) is None:
        return f"invalid value: {value}"
    if parts[1] is not None and not _valid_port(parts[1]):
        return f"invalid value: {value}"
    return None


def validate_sni(value: str) -> str | None:
    parts = split_host_port(value)
    if parts is None:
        return f"invalid value: {value}"
    if _host_kind(parts[0]) in ("ipv4", "ipv6"):
        return "must not be an IP"
    if parts[1] is not None:
        return "must not have a port"
    return validate_host(value)


def validate_wildcard_host(value: str) -> str | None:
    stars = value.count("*")
    if stars > 1:
        return "only one wildcard must be specified"
    if stars == 1 and not (value.startswith("*") or value.endswith("*")):
        return "wildcard must be leftmost or rightmost character"
    return validate_sni(value.replace("*", "wildcard"))


def validate_route_host(value: str) -> str | None:
    # routes.hosts: one wildcard at most, and only as a whole leftmost/rightmost label
    if value.count("*") > 1:
        return "invalid wildcard: must have at most one wildcard"
    if "*" in value and not (value.startswith("*.") or re.search(r"\.\*(:\d+)?$", value)):
        return "invalid wildcard: must be placed at leftmost or rightmost label"
    return validate_host_with_optional_port(value.replace("*", "wildcard"))


def validate_ip_or_cidr(value: str) -> str | None:
    try:
        ipaddress.ip_network(value, strict=False)
    except ValueError:
        return f"invalid ip or cidr range: '{value}'"
    return None


# -- paths ------------------------------------------------------------------------------

_UNRESERVED = re.compile(r"[A-Za-z0-9\-._~]")
_PATH_CHARS = re.compile(r"^[A-Za-z0-9\-._~!$&'()*+,;=%:@/]*$")
_BAD_PERCENT = re.compile(r"%(?![0-9A-Fa-f]{2}).{0,2}")


def check_percent_encoding(path: str) -> str | None:
    m = _BAD_PERCENT.search(path)
    if m:
        return f"invalid url-encoded value: '{m.group(0)}'"
    return None


def validate_service_path(path: str) -> str | None:
    # `starts_with="/"` is a constraint on the field and runs before this
    if "//" in path:
        return "must not have empty segments"
    err = check_percent_encoding(path)
    if err:
        return err
    if not _PATH_CHARS.match(path):
        return f"invalid path: '{path}' (characters outside of the reserved list of RFC 3986 found)"
    return None


def _decode_unreserved(m: re.Match[str]) -> str:
    ch = chr(int(m.group(1), 16))
    return ch if _UNRESERVED.fullmatch(ch) else "%" + m.group(1).upper()


def remove_dot_segments(path: str) -> str:
    """RFC 3986 §5.2.4."""
    out: list[str] = []
    segments = path.split("/")
    for i, seg in enumerate(segments):
        last = i == len(segments) - 1
        if seg == ".":
            if last:
                out.append("")
        elif seg == "..":
            if len(out) > 1:
                out.pop()
            if last:
                out.append("")
        else:
            out.append(seg)
    result = "/".join(out)
    return result if result.startswith("/") or not path.startswith("/") else "/" + result


def normalize_path(path: str) -> str:
    """Kong's prefix-path normal form: unreserved characters percent-decoded, other escapes
    upper-cased, ``.``/``..`` segments removed, repeated slashes merged."""
    decoded = re.sub(r"%([0-9A-Fa-f]{2})", _decode_unreserved, path)
    decoded = re.sub(r"/{2,}", "/", decoded)
    return remove_dot_segments(decoded)


# Kong's regexes are PCRE (and Rust `regex` for the ATC router); both name groups
# `(?<name>...)`, which Python's `re` spells `(?P<name>...)`. Look-behinds are untouched.
_NAMED_GROUP = re.compile(r"\(\?<(?=[A-Za-z_])")


def to_python_regex(pattern: str) -> str:
    return _NAMED_GROUP.sub("(?P<", pattern)


def validate_router_path(path: str) -> str | None:
    if not (path.startswith("/") or path.startswith("~/")):
        return "should start with: / (fixed path) or ~/ (regex path)"
    if "//" in path:
        return "must not have empty segments"
    err = check_percent_encoding(path)
    if err:
        return err
    if not path.startswith("~"):
        normalized = normalize_path(path)
        if normalized != path:
            return f"non-normalized path, consider use '{normalized}' instead"
        return None
    regex = path[1:]
    try:
        re.compile(to_python_regex(regex))
    except re.error as exc:
        # Kong's message shape, with Python's `re` diagnosis in place of PCRE's
        return f"invalid regex: '{regex}' (PCRE returned: {exc})"
    return None


# -- names and tags ---------------------------------------------------------------------

_UTF8_NAME_ASCII = re.compile(r"[A-Za-z0-9._~-]")


def validate_utf8_name(value: str) -> str | None:
    for ch in value:
        if ord(ch) < 0x80 and not _UTF8_NAME_ASCII.match(ch):
            return (
                f"invalid value '{value}': the only accepted ascii characters are "
                "alphanumerics or ., -, _, and ~"
            )
    return None


def validate_tag(value: str) -> str | None:
    for ch in value:
        code = ord(ch)
        if code < 0x80 and (code < 0x20 or code > 0x7E or ch in ",/"):
            return (
                f"invalid tag '{value}': expected printable ascii (except `,` and `/`) "
                "or valid utf-8 sequences"
            )
    return None


def validate_header_name(value: str) -> str | None:
    if re.fullmatch(r"[a-zA-Z0-9\-_]+", value):
        return None
    return f"bad header name '{value}', allowed characters are A-Z, a-z, 0-9, '_', and '-'"


def validate_cookie_name(value: str) -> str | None:
    if re.fullmatch(r"[a-zA-Z0-9\-_]+", value):
        return None
    return f"bad cookie name '{value}', allowed characters are A-Z, a-z, 0-9, '_', and '-'"


# -- typedef fields ---------------------------------------------------------------------

MAX_TIMEOUT = 2**31 - 2


def uuid(**kw: Any) -> Field:
    return Field.string(uuid=True, **kw)


def utf8_name(**kw: Any) -> Field:
    return Field.string(custom_validator=validate_utf8_name, **kw)


def host(**kw: Any) -> Field:
    return Field.string(custom_validator=validate_host, **kw)


def host_with_optional_port(**kw: Any) -> Field:
    return Field.string(custom_validator=validate_host_with_optional_port, **kw)


def port(**kw: Any) -> Field:
    return Field.integer(between=(0, 65535), **kw)


def path(**kw: Any) -> Field:
    return Field.string(starts_with="/", custom_validator=validate_service_path, **kw)


def timeout(**kw: Any) -> Field:
    return Field.integer(between=(0, MAX_TIMEOUT), **kw)


def protocol(**kw: Any) -> Field:
    return Field.string(one_of=PROTOCOLS, **kw)


def protocols(**kw: Any) -> Field:
    return Field.set(protocol(), **kw)


def tags(**kw: Any) -> Field:
    return Field.set(Field.string(custom_validator=validate_tag), **kw)


def header_name(**kw: Any) -> Field:
    return Field.string(custom_validator=validate_header_name, **kw)


def sni(**kw: Any) -> Field:
    return Field.string(custom_validator=validate_sni, **kw)


def wildcard_host(**kw: Any) -> Field:
    return Field.string(custom_validator=validate_wildcard_host, **kw)


def ip_or_cidr(**kw: Any) -> Field:
    return Field.string(custom_validator=validate_ip_or_cidr, **kw)


def http_method(**kw: Any) -> Field:
    return Field.string(match=r"^[A-Z]+$", **kw)
