"""Reward-hacking resistance: only plain data crosses from the candidate to the tests."""

from __future__ import annotations

import math

import pytest

from tl_eval.harness.verify.code import CodeVerifier, SandboxLimits
from tl_eval.harness.verify.sandbox import codec
from tests.conftest_sandbox import job

PLAIN = [None, True, False, 0, -7, 2**100, -(3**200), 1.5, float("inf"), -0.0, 1 + 2j, "", "héllo\x00", b"\x00\xff",
         [], [1, [2, [3]]], (1, "a", (2.0,)), {"a": [1, 2], 3: (4,), (1, 2): None}, {1, 2, "x"}, frozenset({(1, 2)}),
         {frozenset({1}): {b"k": [set()]}}]


@pytest.mark.parametrize("value", PLAIN, ids=[repr(v)[:30] for v in PLAIN])
def test_round_trip_exact(value):
    back = codec.loads(codec.dumps(value))
    assert back == value and type(back) is type(value)
    assert repr(back) == repr(value)


def test_nan_round_trips():
    assert math.isnan(codec.loads(codec.dumps(float("nan"))))


class AlwaysEqual:
    def __eq__(self, other):
        return True


class RiggedInt(int):
    def __eq__(self, other):
        return True

    __hash__ = int.__hash__


@pytest.mark.parametrize("value", [AlwaysEqual(), RiggedInt(3), [1, RiggedInt(2)], {"k": AlwaysEqual()},
                                   (lambda: 1), iter([1]), object(), type("S", (str,), {})("x"),
                                   type("D", (dict,), {})(a=1), __import__("collections").deque([1])])
def test_non_plain_rejected(value):
    assert not codec.is_plain(value)
    with pytest.raises(codec.NotPlainData):
        codec.dumps(value)


def test_stdlib_dicts_and_builtin_types_cross_as_plain():
    from collections import Counter, OrderedDict, defaultdict
    for value in (Counter("aab"), OrderedDict(a=1), defaultdict(int, b=2)):
        back = codec.loads(codec.dumps(value))
        assert type(back) is dict and back == dict(value)
    assert codec.loads(codec.dumps([int, str, type(None)])) == [int, str, type(None)]
    with pytest.raises(codec.NotPlainData):
        codec.dumps(codec.NotPlainData)


def test_self_referencing_list_rejected():
    a = []
    a.append(a)
    with pytest.raises(codec.NotPlainData):
        codec.dumps(a)


@pytest.mark.parametrize("bad", [b'{"x": 1}', b'{"I": "zz"}', b'{"t": 5}', b'{"d": [[1]]}', b'{"a": 1, "b": 2}'])
def test_decoder_rejects_garbage(bad):
    with pytest.raises((ValueError, TypeError)):
        codec.loads(bad)


@pytest.fixture(scope="module")
def verifier():
    with CodeVerifier(SandboxLimits(workers=1)) as v:
        yield v


RIGGED = {
    "always_equal": "class E:\n    def __eq__(self, o): return True\n    def __ne__(self, o): return False\n"
                    "def f(x):\n    return E()\n",
    "int_subclass": "class R(int):\n    def __eq__(self, o): return True\n    __hash__ = int.__hash__\n"
                    "def f(x):\n    return R(0)\n",
    "mock": "from unittest import mock\ndef f(x):\n    return mock.MagicMock()\n",
    "str_subclass": "class S(str):\n    def __eq__(self, o): return True\ndef f(x):\n    return S('')\n",
    "nested": "class E:\n    def __eq__(self, o): return True\ndef f(x):\n    return [E(), E()]\n",
}


@pytest.mark.parametrize("name", list(RIGGED))
def test_rigged_return_values_fail(verifier, name):
    v = verifier.verify([job(RIGGED[name], ["assert f(2) == 4", "assert f(3) == [9, 9]"])])[0]
    assert v.status == "fail", (v.status, v.details)
    assert "plain data" in v.details["reason"]


def test_plain_values_of_every_kind_pass(verifier):
    sol = "def f(x):\n    return x\n"
    tests = [f"assert f({v!r}) == {v!r} and type(f({v!r})) is type({v!r})" for v in PLAIN if v != float("inf")]
    tests.append("assert f(float('inf')) == float('inf')")
    v = verifier.verify([job(sol, tests, time_limit_s=5)])[0]
    assert v.status == "pass", (v.details, v.stderr)
