"""Kong entity schemas: defaults, the url shorthand, and each implemented message."""

from __future__ import annotations

import datetime
import hashlib
from typing import Any

import pytest
from config_helpers import doc, ok, one, problems
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from tollway.config.declarative import validate
from tollway.config.errors import ConfigError

ROUTE_DEFAULTS = {
    "name": None,
    "protocols": ["http", "https"],
    "methods": None,
    "hosts": None,
    "paths": ["/x"],
    "headers": None,
    "https_redirect_status_code": 426,
    "regex_priority": 0,
    "strip_path": True,
    "path_handling": "v0",
    "preserve_host": False,
    "request_buffering": True,
    "response_buffering": True,
    "snis": None,
    "sources": None,
    "destinations": None,
    "tags": None,
    "service": None,
}


def test_service_defaults() -> None:
    svc = one("services", name="s", host="example.com")
    svc.pop("id")
    assert svc == {
        "name": "s",
        "retries": 5,
        "protocol": "http",
        "host": "example.com",
        "port": 80,
        "path": None,
        "connect_timeout": 60000,
        "write_timeout": 60000,
        "read_timeout": 60000,
        "tags": None,
        "client_certificate": None,
        "tls_verify": None,
        "tls_verify_depth": None,
        "ca_certificates": None,
        "enabled": True,
    }


def test_route_defaults() -> None:
    route = one("routes", paths=["/x"])
    route.pop("id")
    assert route == ROUTE_DEFAULTS


def test_consumer_plugin_target_credential_defaults(dummy_plugins: None) -> None:
    config = ok(
        doc(
            consumers=[
                {
                    "username": "alice",
                    "keyauth_credentials": [{}],
                    "jwt_secrets": [{"key": "iss"}],
                }
            ],
            upstreams=[{"name": "up.internal", "targets": [{"target": "10.0.0.1"}]}],
            plugins=[{"name": "cors"}],
        )
    )
    e = config.entities
    assert {k: v for k, v in e["consumers"][0].items() if k != "id"} == {
        "username": "alice",
        "custom_id": None,
        "tags": None,
    }
    plugin = e["plugins"][0]
    assert plugin["protocols"] == ["grpc", "grpcs", "http", "https"]
    assert (plugin["enabled"], plugin["config"], plugin["route"], plugin["instance_name"]) == (
        True,
        {},
        None,
        None,
    )
    target = e["targets"][0]
    assert (target["target"], target["weight"]) == ("10.0.0.1:8000", 100)
    assert target["upstream"] == {"id": e["upstreams"][0]["id"]}
    cred = e["keyauth_credentials"][0]
    assert len(cred["key"]) == 32 and cred["consumer"] == {"id": e["consumers"][0]["id"]}
    jwt = e["jwt_secrets"][0]
    assert (jwt["key"], jwt["algorithm"], jwt["rsa_public_key"]) == ("iss", "HS256", None)
    assert isinstance(jwt["secret"], str) and len(jwt["secret"]) == 32


def test_upstream_defaults_include_every_healthcheck_default() -> None:
    up = one("upstreams", name="orders.internal")
    assert (up["algorithm"], up["hash_on"], up["hash_fallback"]) == (
        "round-robin",
        "none",
        "none",
    )
    assert (up["slots"], up["hash_on_cookie_path"], up["use_srv_name"]) == (10000, "/", False)
    assert up["healthchecks"] == {
        "threshold": 0,
        "active": {
            "type": "http",
            "timeout": 1,
            "concurrency": 10,
            "http_path": "/",
            "https_sni": None,
            "https_verify_certificate": True,
            "headers": None,
            "healthy": {"interval": 0, "http_statuses": [200, 302], "successes": 0},
            "unhealthy": {
                "interval": 0,
                "http_statuses": [429, 404, 500, 501, 502, 503, 504, 505],
                "tcp_failures": 0,
                "timeouts": 0,
                "http_failures": 0,
            },
        },
        "passive": {
            "type": "http",
            "healthy": {
                "http_statuses": [
                    200,
                    201,
                    202,
                    203,
                    204,
                    205,
                    206,
                    207,
                    208,
                    226,
                    300,
                    301,
                    302,
                    303,
                    304,
                    305,
                    306,
                    307,
                    308,
                ],
                "successes": 0,
            },
            "unhealthy": {
                "http_statuses": [429, 500, 503],
                "tcp_failures": 0,
                "timeouts": 0,
                "http_failures": 0,
            },
        },
    }


def test_partial_healthchecks_keep_other_defaults() -> None:
    up = one("upstreams", name="u", healthchecks={"active": {"healthy": {"interval": 5}}})
    assert up["healthchecks"]["active"]["healthy"] == {
        "interval": 5,
        "http_statuses": [200, 302],
        "successes": 0,
    }
    assert up["healthchecks"]["passive"]["unhealthy"]["http_statuses"] == [429, 500, 503]


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("http://httpbin.org/anything", ("http", "httpbin.org", 80, "/anything")),
        ("https://api.example.com", ("https", "api.example.com", 443, None)),
        ("grpc://svc:9000", ("grpc", "svc", 9000, None)),
        ("http://orders.internal:8080/api", ("http", "orders.internal", 8080, "/api")),
        ("http://u:p@h.example/p?q=1#frag", ("http", "h.example", 80, "/p")),
        ("https://[::1]:8443/x", ("https", "[::1]", 8443, "/x")),
    ],
)
def test_url_shorthand_expansion(url: str, expected: tuple[Any, ...]) -> None:
    svc = one("services", url=url)
    assert (svc["protocol"], svc["host"], svc["port"], svc["path"]) == expected
    assert "url" not in svc


def test_url_overwrites_explicit_fields_including_path() -> None:
    svc = one("services", url="http://x.example", path="/old", port=9999, protocol="https")
    assert (svc["protocol"], svc["port"], svc["path"]) == ("http", 80, None)


def _service_errors(**fields: Any) -> list[tuple[str, str]]:
    return problems(doc(services=[{"host": "h.example", **fields}]))


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"host": None}, [("services[0].host", "required field missing")]),
        ({"port": 70000}, [("services[0].port", "value should be between 0 and 65535")]),
        (
            {"protocol": "ftp"},
            [
                (
                    "services[0].protocol",
                    "expected one of: grpc, grpcs, http, https, tcp, tls, tls_passthrough, udp",
                )
            ],
        ),
        ({"host": "h.example:80"}, [("services[0].host", "must not have a port")]),
        ({"host": "bad host"}, [("services[0].host", "invalid value: bad host")]),
        ({"path": "x"}, [("services[0].path", "should start with: /")]),
        ({"path": "/a//b"}, [("services[0].path", "must not have empty segments")]),
        ({"path": "/a%zz"}, [("services[0].path", "invalid url-encoded value: '%zz'")]),
        (
            {"path": "/a b"},
            [
                (
                    "services[0].path",
                    "invalid path: '/a b' (characters outside of "
                    "the reserved list of RFC 3986 found)",
                )
            ],
        ),
        (
            {"name": "a b"},
            [
                (
                    "services[0].name",
                    "invalid value 'a b': the only accepted ascii "
                    "characters are alphanumerics or ., -, _, and ~",
                )
            ],
        ),
        ({"retries": -1}, [("services[0].retries", "value should be between 0 and 32767")]),
        (
            {"connect_timeout": 0},
            [("services[0].connect_timeout", "value should be between 1 and 2147483646")],
        ),
        (
            {"tags": ["a,b"]},
            [
                (
                    "services[0].tags[0]",
                    "invalid tag 'a,b': expected printable "
                    "ascii (except `,` and `/`) or valid utf-8 sequences",
                )
            ],
        ),
        (
            {"protocol": "tcp", "path": "/x"},
            [
                ("services[0].path", "value must be null"),
                ("services[0]", "failed conditional validation given value of field 'protocol'"),
            ],
        ),
        (
            {"tls_verify": True},
            [
                ("services[0].tls_verify", "value must be null"),
                ("services[0]", "failed conditional validation given value of field 'protocol'"),
            ],
        ),
        ({"bogus": 1}, [("services[0].bogus", "unknown field")]),
    ],
)
def test_service_errors(fields: dict[str, Any], expected: list[tuple[str, str]]) -> None:
    assert _service_errors(**fields) == expected


def test_https_service_may_set_tls_fields() -> None:
    svc = one("services", url="https://x.example", tls_verify=True, tls_verify_depth=3)
    assert (svc["tls_verify"], svc["tls_verify_depth"]) == (True, 3)


def _route_errors(**fields: Any) -> list[tuple[str, str]]:
    return problems(doc(routes=[fields]))


MUST_HTTPS = (
    "must set one of 'methods', 'hosts', 'headers', 'paths', 'snis' when 'protocols' is 'https'"
)


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({}, [("routes[0]", MUST_HTTPS)]),
        (
            {"protocols": ["http"]},
            [
                (
                    "routes[0]",
                    "must set one of 'methods', 'hosts', 'headers', "
                    "'paths' when 'protocols' is 'http'",
                )
            ],
        ),
        (
            {"protocols": ["http", "tcp"], "paths": ["/"]},
            [
                (
                    "routes[0].protocols",
                    "these sets are mutually exclusive: ('http', 'https'), "
                    "('tcp', 'tls', 'udp'), ('tls_passthrough'), ('grpc', 'grpcs')",
                )
            ],
        ),
        ({"protocols": [], "paths": ["/"]}, [("routes[0].protocols", "length must be at least 1")]),
        (
            {"hosts": ["*.a.*"]},
            [("routes[0].hosts[0]", "invalid wildcard: must have at most one wildcard")],
        ),
        (
            {"hosts": ["a.*.com"]},
            [
                (
                    "routes[0].hosts[0]",
                    "invalid wildcard: must be placed at leftmost or rightmost label",
                )
            ],
        ),
        (
            {"paths": ["api"]},
            [("routes[0].paths[0]", "should start with: / (fixed path) or ~/ (regex path)")],
        ),
        ({"paths": ["/a//b"]}, [("routes[0].paths[0]", "must not have empty segments")]),
        (
            {"paths": ["/a/../b"]},
            [("routes[0].paths[0]", "non-normalized path, consider use '/b' instead")],
        ),
        (
            {"paths": ["/%7Euser"]},
            [("routes[0].paths[0]", "non-normalized path, consider use '/~user' instead")],
        ),
        (
            {"paths": ["~/(unclosed"]},
            [
                (
                    "routes[0].paths[0]",
                    "invalid regex: '/(unclosed' (PCRE returned: missing ), "
                    "unterminated subpattern at position 1)",
                )
            ],
        ),
        (
            {"headers": {"Host": ["x"]}},
            [
                (
                    "routes[0].headers.Host",
                    "cannot contain 'host' header, which must be specified "
                    "in the 'hosts' attribute",
                )
            ],
        ),
        (
            {"paths": ["/"], "https_redirect_status_code": 200},
            [("routes[0].https_redirect_status_code", "expected one of: 426, 301, 302, 307, 308")],
        ),
        ({"methods": ["get"]}, [("routes[0].methods[0]", "invalid value: get")]),
        (
            {"protocols": ["http"], "paths": ["/"], "snis": ["a.example"]},
            [
                (
                    "routes[0].snis",
                    "'snis' can only be set when 'protocols' is 'grpcs', 'https', "
                    "'tls' or 'tls_passthrough'",
                ),
                ("routes[0]", "failed conditional validation given value of field 'protocols'"),
            ],
        ),
        (
            {"paths": ["/"], "sources": [{"ip": "10.0.0.1"}]},
            [("routes[0].sources", "cannot set 'sources' when 'protocols' is 'http' or 'https'")],
        ),
        (
            {"protocols": ["grpc"], "paths": ["/"], "strip_path": True},
            [
                (
                    "routes[0].strip_path",
                    "cannot set 'strip_path' when 'protocols' is 'grpc' or 'grpcs'",
                )
            ],
        ),
        (
            {"protocols": ["grpcs"]},
            [
                (
                    "routes[0]",
                    "must set one of 'hosts', 'headers', 'paths', "
                    "'snis' when 'protocols' is 'grpcs'",
                )
            ],
        ),
        (
            {"protocols": ["tcp"], "paths": ["/"], "destinations": [{"port": 1}]},
            [
                (
                    "routes[0].paths",
                    "cannot set 'paths' when 'protocols' is 'tcp', 'tls', "
                    "'tls_passthrough' or 'udp'",
                )
            ],
        ),
        (
            {"protocols": ["tcp"]},
            [
                (
                    "routes[0]",
                    "must set one of 'sources', 'destinations', "
                    "'snis' when 'protocols' is 'tcp', 'tls' or 'udp'",
                )
            ],
        ),
        (
            {"protocols": ["tls_passthrough"]},
            [("routes[0]", "must set snis when 'protocols' is 'tls_passthrough'")],
        ),
        (
            {"protocols": ["tcp"], "sources": [{"ip": "nope"}]},
            [("routes[0].sources[0].ip", "invalid ip or cidr range: 'nope'")],
        ),
        (
            {"protocols": ["tcp"], "sources": [{}]},
            [
                (
                    "routes[0].sources[0]",
                    "at least one of these fields must be non-empty: 'ip', 'port'",
                )
            ],
        ),
    ],
)
def test_route_errors(fields: dict[str, Any], expected: list[tuple[str, str]]) -> None:
    assert _route_errors(**fields) == expected


@pytest.mark.parametrize(
    "fields",
    [
        {"paths": ["/api", "~/v(?<ver>\\d+)/orders$"]},
        {"hosts": ["*.example.com", "example.*", "api.example.com:8080"]},
        {"protocols": ["https"], "snis": ["*.example.com"]},
        {"protocols": ["tcp"], "destinations": [{"port": 5432}]},
        {"protocols": ["tls_passthrough"], "snis": ["db.example"]},
        {"headers": {"x-version": ["1", "2"]}},
        {"methods": ["GET", "GET", "POST"]},
    ],
)
def test_valid_routes(fields: dict[str, Any]) -> None:
    one("routes", **fields)


def test_grpc_route_defaults_strip_path_false_and_methods_deduplicate() -> None:
    assert one("routes", protocols=["grpc"], paths=["/"])["strip_path"] is False
    assert one("routes", methods=["GET", "GET"])["methods"] == ["GET"]


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        (
            {"name": "10.0.0.1"},
            [("upstreams[0].name", "Invalid name ('10.0.0.1'); no ip addresses allowed")],
        ),
        ({"name": "up:80"}, [("upstreams[0].name", "Invalid name ('up:80'); no port allowed")]),
        (
            {"name": "bad_name!"},
            [("upstreams[0].name", "Invalid name ('bad_name!'); must be a valid hostname")],
        ),
        (
            {"name": "u", "hash_on": "header"},
            [
                ("upstreams[0].hash_on_header", "required field missing"),
                ("upstreams[0]", "failed conditional validation given value of field 'hash_on'"),
            ],
        ),
        (
            {"name": "u", "hash_on": "ip", "hash_fallback": "ip"},
            [
                (
                    "upstreams[0].hash_fallback",
                    "expected one of: none, consumer, header, cookie, path, query_arg, uri_capture",
                ),
                ("upstreams[0]", "failed conditional validation given value of field 'hash_on'"),
            ],
        ),
        (
            {
                "name": "u",
                "hash_on": "header",
                "hash_on_header": "x-a",
                "hash_fallback": "header",
                "hash_fallback_header": "x-a",
            },
            [
                (
                    "upstreams[0]",
                    "values of these fields must be distinct: 'hash_on_header', "
                    "'hash_fallback_header'",
                )
            ],
        ),
        (
            {"name": "u", "slots": 5},
            [("upstreams[0].slots", "value should be between 10 and 65536")],
        ),
        (
            {"name": "u", "hash_on_header": "bad header"},
            [
                (
                    "upstreams[0].hash_on_header",
                    "bad header name 'bad header', allowed characters "
                    "are A-Z, a-z, 0-9, '_', and '-'",
                )
            ],
        ),
        (
            {"name": "u", "healthchecks": {"active": {"healthy": {"http_statuses": [99]}}}},
            [
                (
                    "upstreams[0].healthchecks.active.healthy.http_statuses[0]",
                    "value should be between 100 and 999",
                )
            ],
        ),
    ],
)
def test_upstream_errors(fields: dict[str, Any], expected: list[tuple[str, str]]) -> None:
    assert problems(doc(upstreams=[fields])) == expected


@pytest.mark.parametrize(
    ("fields", "algorithm", "hash_on"),
    [
        ({"hash_on": "ip"}, "consistent-hashing", "ip"),
        ({"algorithm": "consistent-hashing", "hash_on": "none"}, "round-robin", "none"),
        ({"algorithm": "latency", "hash_on": "ip"}, "latency", "none"),
        ({"algorithm": "least-connections"}, "least-connections", "none"),
    ],
)
def test_upstream_hash_normalisation(fields: dict[str, Any], algorithm: str, hash_on: str) -> None:
    up = one("upstreams", name="u", **fields)
    assert (up["algorithm"], up["hash_on"]) == (algorithm, hash_on)


@pytest.mark.parametrize(
    ("target", "normalised"),
    [
        ("10.0.0.1", "10.0.0.1:8000"),
        ("10.0.0.1:8080", "10.0.0.1:8080"),
        ("svc.internal", "svc.internal:8000"),
        ("::1", "[::1]:8000"),
        ("[::1]:81", "[::1]:81"),
    ],
)
def test_target_normalisation(target: str, normalised: str) -> None:
    config = ok(doc(upstreams=[{"name": "u", "targets": [{"target": target}]}]))
    assert config.entities["targets"][0]["target"] == normalised


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        (
            {"target": "bad host"},
            (
                "upstreams[0].targets[0].target",
                "Invalid target ('bad host'); not a valid hostname or ip address",
            ),
        ),
        (
            {"target": "h:99999"},
            (
                "upstreams[0].targets[0].target",
                "Invalid target ('h:99999'); not a valid hostname or ip address",
            ),
        ),
        (
            {"target": "h", "weight": 70000},
            ("upstreams[0].targets[0].weight", "value should be between 0 and 65535"),
        ),
        ({}, ("upstreams[0].targets[0].target", "required field missing")),
    ],
)
def test_target_errors(fields: dict[str, Any], expected: tuple[str, str]) -> None:
    assert problems(doc(upstreams=[{"name": "u", "targets": [fields]}])) == [expected]


def test_consumer_needs_username_or_custom_id() -> None:
    assert problems(doc(consumers=[{"tags": ["x"]}])) == [
        ("consumers[0]", "at least one of these fields must be non-empty: 'custom_id', 'username'")
    ]
    assert one("consumers", custom_id="c1")["custom_id"] == "c1"


def test_jwt_asymmetric_algorithm_needs_public_key() -> None:
    assert problems(
        doc(consumers=[{"username": "a", "jwt_secrets": [{"algorithm": "RS256"}]}])
    ) == [
        ("consumers[0].jwt_secrets[0].rsa_public_key", "required field missing"),
        (
            "consumers[0].jwt_secrets[0]",
            "failed conditional validation given value of field 'algorithm'",
        ),
    ]


# Real keys and certificates, made with `cryptography` (a hard dependency).


def _key_pem(key: PrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


def _cert_pem(
    key: PrivateKey,
    *,
    ca: bool | None = None,
    expired: bool = False,
    name: str = "example.com",
) -> str:
    """A self-signed certificate for `key`; `ca` adds a BasicConstraints extension."""
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    start, end = (
        (now - datetime.timedelta(days=30), now - datetime.timedelta(days=1))
        if expired
        else (now - datetime.timedelta(days=1), now + datetime.timedelta(days=30))
    )
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
    )
    if ca is not None:
        builder = builder.add_extension(x509.BasicConstraints(ca=ca, path_length=None), True)
    return builder.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM).decode()


PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey
RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
RSA_KEY_2 = rsa.generate_private_key(public_exponent=65537, key_size=2048)
EC_KEY = ec.generate_private_key(ec.SECP256R1())
EC_KEY_2 = ec.generate_private_key(ec.SECP256R1())

CERT, KEY = _cert_pem(RSA_KEY), _key_pem(RSA_KEY)
CERT_EC, KEY_EC = _cert_pem(EC_KEY), _key_pem(EC_KEY)
CA_CERT = _cert_pem(EC_KEY, ca=True, name="ca one")
CA_CERT_2 = _cert_pem(RSA_KEY, ca=True, name="ca two")


def _der_sha256(cert_pem: str) -> str:
    der = x509.load_pem_x509_certificate(cert_pem.encode()).public_bytes(
        serialization.Encoding.DER
    )
    return hashlib.sha256(der).hexdigest()


def test_certificates_snis_and_ca_certificates() -> None:
    config = ok(
        doc(
            certificates=[
                {
                    "cert": CERT,
                    "key": KEY,
                    "cert_alt": CERT_EC,
                    "key_alt": KEY_EC,
                    "snis": [{"name": "*.example.com"}],
                }
            ],
            ca_certificates=[{"cert": CA_CERT}, {"cert": CA_CERT_2, "cert_digest": "x"}],
        )
    )
    cert_id = config.entities["certificates"][0]["id"]
    assert config.entities["snis"][0]["certificate"] == {"id": cert_id}
    # cert_digest is Kong's x509:digest("sha256"): the sha256 hex of the DER, always computed
    first, second = config.entities["ca_certificates"]
    assert first["cert_digest"] == _der_sha256(CA_CERT)
    assert second["cert_digest"] == _der_sha256(CA_CERT_2)


@pytest.mark.parametrize(
    ("entity", "expected"),
    [
        (
            {"cert": "nope", "key": KEY},
            [("certificates[0].cert", "invalid certificate: ")],
        ),
        (
            {"cert": CERT, "key": CERT},
            [("certificates[0].key", "invalid key: ")],
        ),
        (
            {"cert": CERT, "key": KEY, "cert_alt": CERT_EC},
            [("certificates[0]", "all or none of these fields must be set: 'cert_alt', 'key_alt'")],
        ),
        (
            {"cert": CERT, "key": KEY, "snis": [{"name": "a.*.com"}]},
            [("certificates[0].snis[0].name", "wildcard must be leftmost or rightmost character")],
        ),
        (
            {"cert": CERT, "key": KEY, "snis": [{"name": "10.0.0.1"}]},
            [("certificates[0].snis[0].name", "must not be an IP")],
        ),
        (
            {"cert": CERT, "key": _key_pem(RSA_KEY_2)},
            [("certificates[0]", "certificate does not match key")],
        ),
        (
            {"cert": CERT, "key": KEY, "cert_alt": CERT_EC, "key_alt": _key_pem(EC_KEY_2)},
            [("certificates[0]", "alternative certificate does not match key")],
        ),
        (
            # the alternative pair is an RSA pair too
            {"cert": CERT, "key": KEY, "cert_alt": _cert_pem(RSA_KEY_2),
             "key_alt": _key_pem(RSA_KEY_2)},
            [
                (
                    "certificates[0]",
                    "certificate and alternative certificate need to have different type "
                    "(e.g. RSA and ECDSA), the provided certificates were both of the same type",
                )
            ],
        ),
        (
            # both checks at once: EC pair as main, mismatching EC pair as alternative
            {"cert": CERT_EC, "key": _key_pem(EC_KEY_2), "cert_alt": CERT, "key_alt": KEY},
            [("certificates[0]", "certificate does not match key")],
        ),
    ],
)
def test_certificate_errors(entity: dict[str, Any], expected: list[tuple[str, str]]) -> None:
    got = problems(doc(certificates=[entity]))
    assert len(got) == len(expected)
    # parse errors end with cryptography's own wording (Kong shows OpenSSL's)
    pairs = zip(got, expected, strict=True)
    assert [(path, msg[: len(want)]) for (path, msg), (_, want) in pairs] == expected


def test_certificate_error_tables() -> None:
    with pytest.raises(ConfigError) as info:
        validate(doc(certificates=[{"cert": CERT, "key": KEY_EC}]))
    assert info.value.fields == {
        "certificates": [{"@entity": ["certificate does not match key"]}]
    }
    assert info.value.flattened[0]["errors"] == [
        {"type": "entity", "message": "certificate does not match key"}
    ]


def test_certificate_chain_accepted() -> None:
    # a leaf followed by its chain: the first certificate is the one matched with the key
    config = ok(doc(certificates=[{"cert": CERT + CA_CERT, "key": KEY}]))
    assert config.entities["certificates"][0]["cert"] == CERT + CA_CERT


def test_encrypted_key_refused() -> None:
    encrypted = RSA_KEY.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"secret"),
    ).decode()
    ((path, message),) = problems(doc(certificates=[{"cert": CERT, "key": encrypted}]))
    assert path == "certificates[0].key" and message.startswith("invalid key: ")


@pytest.mark.parametrize(
    ("cert", "expected"),
    [
        (CA_CERT + CA_CERT_2, "please submit only one certificate at a time"),
        (
            _cert_pem(EC_KEY, ca=True, expired=True),
            'certificate expired, "Not After" time is in the past',
        ),
        (
            _cert_pem(EC_KEY),
            'certificate does not appear to be a CA because it is missing the "CA" basic '
            "constraint",
        ),
        (
            _cert_pem(EC_KEY, ca=False),
            'certificate does not appear to be a CA because it is missing the "CA" basic '
            "constraint",
        ),
    ],
)
def test_ca_certificate_errors(cert: str, expected: str) -> None:
    # entity checks in Kong's ca_certificates.lua: reported on the entity, not on `cert`
    assert problems(doc(ca_certificates=[{"cert": cert}])) == [("ca_certificates[0]", expected)]


def test_ca_certificate_bad_pem() -> None:
    ((path, message),) = problems(doc(ca_certificates=[{"cert": "nope"}]))
    assert path == "ca_certificates[0].cert" and message.startswith("invalid certificate: ")


def test_ca_certificate_digest_unique() -> None:
    digest = _der_sha256(CA_CERT)
    assert problems(doc(ca_certificates=[{"cert": CA_CERT}, {"cert": CA_CERT, "tags": ["b"]}])) == [
        (
            "ca_certificates[1]",
            f"uniqueness violation: 'ca_certificates' entity with cert_digest set to '{digest}' "
            "already declared",
        )
    ]
