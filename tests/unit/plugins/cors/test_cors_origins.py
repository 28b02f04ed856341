"""Origin normalisation and matching (Kong's normalize_origin / configure_origin)."""

from __future__ import annotations

import pytest

from tollway.plugins.cors.origins import CACHE_SIZE, OriginPolicy, normalize


@pytest.mark.parametrize(("origin", "domain", "host"), [
    ("http://a.test", "http://a.test", "a.test"),
    ("http://a.test:80", "http://a.test", "a.test"),
    ("https://a.test:443", "https://a.test", "a.test"),
    ("http://a.test:443", "http://a.test:443", "a.test"),
    ("https://a.test:80", "https://a.test:80", "a.test"),
    ("http://A.Test:8080", "http://A.Test:8080", "A.Test"),  # no case folding
    ("http://a.test/path", "http://a.test", "a.test"),
    ("http://user@a.test:81", "http://a.test:81", "a.test"),
    ("http://[::1]:8080", "http://::1:8080", "::1"),
    ("http://a.test:", "http://a.test:", "a.test"),
    ("http://a.test#frag", "http://a.test", "a.test"),
    ("a.test", "a.test", "a.test"),  # no authority: kept as is
    ("localhost:3000", "localhost:3000", "localhost:3000"),
    ("null", "null", "null"),
    ("http://", "http://", "http://"),
])
def test_normalize(origin: str, domain: str, host: str) -> None:
    assert normalize(origin) == (domain, host)


@pytest.mark.parametrize(("origins", "allow_all", "fixed", "star"), [
    (None, True, None, False),
    ([], True, None, False),
    (["*"], True, None, True),
    (["http://a.test"], False, "http://a.test", False),
    ([r"http://.*\.a\.test"], False, None, False),
    (["http://a.test", "*"], False, None, True),
])
def test_policy_kind(origins: list[str] | None, allow_all: bool, fixed: str | None,
                     star: bool) -> None:
    p = OriginPolicy(origins)
    assert (p.allow_all, p.fixed, p.star) == (allow_all, fixed, star)


@pytest.mark.parametrize(("origins", "origin", "expected"), [
    (["http://a.test", "http://b.test"], "http://b.test", "http://b.test"),
    (["http://a.test", "http://b.test"], "http://b.test:80", "http://b.test"),
    (["http://a.test:80", "http://b.test"], "http://a.test", "http://a.test"),
    (["http://a.test", "http://b.test"], "https://b.test", None),
    (["a.test", "b.test"], "http://a.test", None),  # literal without scheme: compared whole
    (["a.test", "b.test"], "a.test", "a.test"),
    ([r"https?://(www\.)?a\.test"], "https://www.a.test", "https://www.a.test"),
    ([r"https?://(www\.)?a\.test"], "https://www.a.test.evil", None),
    ([r"^https?://(www\.)?a\.test$"], "http://a.test:80", "http://a.test"),
    ([r"https?://a\.test"], "http://evil.test/https://a.test", None),  # anchored at the start
    ([r"[a-z]+\.a\.test"], "https://x.a.test:9000", "https://x.a.test:9000"),  # by host
    ([r"[a-z]+\.a\.test"], "https://x.a.test.evil", None),
    ([r"(?<sub>[a-z]+)\.a\.test"], "https://x.a.test", "https://x.a.test"),  # PCRE group
])
def test_resolve(origins: list[str], origin: str, expected: str | None) -> None:
    p = OriginPolicy(origins)
    assert p.resolve(origin) == expected
    assert p.resolve(origin) == expected  # from the cache


def test_cache_is_bounded() -> None:
    p = OriginPolicy(["http://a.test", "http://b.test"])
    for i in range(CACHE_SIZE + 10):
        p.resolve(f"http://{i}.test")
    assert len(p.cache) <= CACHE_SIZE
