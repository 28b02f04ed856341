"""HeaderNames and the name bits the response head checks HeaderBlocks with: the same name
always has the same bit, so an overlap is never missed; past NAME_BITS_MAX names share the
last bit, which can only report an overlap that is not one (the exact path then runs)."""

from __future__ import annotations

import copy
import pickle

import pytest

from tollway.dataplane import response
from tollway.plugins import base
from tollway.plugins.base import HeaderBlock, HeaderNames, name_bits, new_block


def test_bits_are_stable_and_distinct() -> None:
    a, b = name_bits([b"x-test-bits-a"]), name_bits([b"x-test-bits-b"])
    assert a != b and a & b == 0
    assert name_bits([b"x-test-bits-a"]) == a
    assert name_bits([b"x-test-bits-a", b"x-test-bits-b"]) == a | b


def test_header_names_masks() -> None:
    names = HeaderNames({b"x-test-set"}, added=(b"x-test-added",))
    assert names == frozenset({b"x-test-set"})  # the set names only
    assert names.lines == {b"x-test-set", b"x-test-added"}
    assert names.mask == name_bits([b"x-test-set"])
    assert names.lmask == names.mask | name_bits([b"x-test-added"])
    # a plain set given to a block is converted once
    block = HeaderBlock(frozenset({b"x-test-set"}), b"X-Test-Set: 1\r\n")
    assert type(block.names) is HeaderNames and block.names.mask == names.mask


def test_added_lines_come_back_as_added_entries() -> None:
    block = HeaderBlock(HeaderNames({b"x-test-set", b"x-test-gone"}, added=(b"vary",)),
                        b"Vary: Origin\r\nX-Test-Set: 1\r\n")
    assert block.entries() == [
        (b"Vary", b"Origin", False, b"vary", b"Vary: Origin\r\n"),
        (b"X-Test-Set", b"1", True, b"x-test-set", b"X-Test-Set: 1\r\n"),
        (b"x-test-gone", None, True, b"x-test-gone", None)]


def test_names_past_the_limit_share_the_last_bit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(base, "_NAME_BITS", {})
    monkeypatch.setattr(base, "NAME_BITS_MAX", 2)
    bits = [name_bits([b"n%d" % i]) for i in range(5)]
    assert bits[:3] == [1, 2, 4]
    assert bits[3] == bits[4] == 4  # shared: n3 and n4 look alike, never unlike themselves
    assert name_bits([b"n4"]) == bits[4]


def test_names_with_bits_have_a_head_code() -> None:
    # the response head finds a name a block may set in the same lookup as the special ones
    names = HeaderNames({b"x-test-head-code"})
    assert base.HEAD_CODES[b"x-test-head-code"] == base.R_NAMED
    assert base.NAME_BIT[b"x-test-head-code"] == names.mask
    # the special names keep their own codes, though they have bits too
    for name, code in response.RESPONSE_SPECIAL.items():
        assert base.HEAD_CODES[name] == code and name in base.NAME_BIT


def test_head_codes_by_spelling_forget_plain_names_a_plugin_sets_later() -> None:
    # learnt per spelling: the response head looks the upstream's name up as it came
    assert response.raw_code(b"Content-LENGTH") == response.R_CLEN
    assert base.HEAD_CODES_RAW[b"Content-LENGTH"] == response.R_CLEN
    assert response.raw_code(b"X-Test-Later") == response.R_PLAIN
    assert base.HEAD_CODES_RAW[b"X-Test-Later"] == response.R_PLAIN
    # a config then gives a plugin a block that sets it: the plain answer must go, or the
    # upstream's value would be sent beside the plugin's
    HeaderNames({b"x-test-later"})
    assert b"X-Test-Later" not in base.HEAD_CODES_RAW
    assert response.raw_code(b"X-Test-Later") == base.R_NAMED


def test_head_codes_by_spelling_stay_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(response, "RAW_CODES_MAX", 8)
    for i in range(50):
        assert response.raw_code(b"X-Flood-%d" % i) == response.R_PLAIN
        assert len(base.HEAD_CODES_RAW) <= 8
    assert base.HEAD_CODES_RAW[b"X-Flood-49"] == response.R_PLAIN


def test_head_codes_by_spelling_keep_no_long_names() -> None:
    long = b"Content-Length" + b"x" * 200
    assert response.raw_code(long) == response.R_PLAIN
    assert long not in base.HEAD_CODES_RAW


def test_replaced_names_reads_blocks_only() -> None:
    block = HeaderBlock(frozenset({b"x-test-cache"}), b"X-Test-Cache: 1\r\n")
    plain = (HeaderNames({b"x-test-plain"}), b"X-Test-Plain: 1\r\n")
    single = base.response_header(b"X-Single", b"1")
    assert response.replaced_names([block, single, plain]) == {b"x-test-cache",
                                                              b"x-test-plain"}


def test_new_block_is_the_constructor_without_its_call() -> None:
    names = HeaderNames((b"x-a",), added=(b"vary",))
    made = new_block((names, b"X-A: 1\r\nVary: Origin\r\n"))
    assert made.__class__ is HeaderBlock  # the response head's fast path checks the class
    assert made == HeaderBlock(names, b"X-A: 1\r\nVary: Origin\r\n")
    assert made.names is names and made.lines == b"X-A: 1\r\nVary: Origin\r\n"
    # a plain set given to the constructor becomes a HeaderNames with its bits
    plain = HeaderBlock(frozenset({b"x-a"}), b"X-A: 1\r\n")
    assert plain.names.__class__ is HeaderNames and plain.names.mask == names.mask
    for clone in (copy.copy(made), pickle.loads(pickle.dumps(made))):
        assert clone.__class__ is HeaderBlock and clone == made
    assert made.entries() == [(b"X-A", b"1", True, b"x-a", b"X-A: 1\r\n"),
                              (b"Vary", b"Origin", False, b"vary", b"Vary: Origin\r\n")]
