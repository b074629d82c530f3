"""Plain-data rule and its wire format: the only values that cross between candidate code and trusted tests.

Exact types only (subclasses rejected), so a value cannot carry a rigged `__eq__`: None, bool, int, float,
complex, str, bytes, and list, tuple, dict, set, frozenset of those, recursively; Counter, OrderedDict and
defaultdict arrive as plain dicts, and the builtin classes themselves (e.g. `int`) by name. The wire format is tagged
JSON rather than pickle or marshal, because the trusted side decodes bytes an attacker wrote and `json`
cannot build anything but dicts, lists, strings and numbers.
"""

from __future__ import annotations

import collections
import json
import re

MAX_DEPTH = 100
_HEX = re.compile(r"(?:[0-9a-f]{2})*")

# The stdlib's own dict subclasses cross as plain dicts: the trusted side only ever sees a dict, so a rigged
# `__eq__` (even on a class swapped in under these names) cannot come along.
_DICT_LIKE = (collections.Counter, collections.OrderedDict, collections.defaultdict)
# Builtin classes cross by name (tests pass e.g. `int` as an argument); equality on them is identity.
_TYPES = {t.__name__: t for t in (int, float, complex, str, bytes, bool, list, tuple, dict, set, frozenset,
                                  type(None))}


class NotPlainData(TypeError):
    """A value outside the plain-data rule."""


def check_plain(value, _depth: int = 0) -> None:
    """Raise NotPlainData unless `value` is plain data (exact types, recursively)."""
    encode(value, _depth)


def is_plain(value) -> bool:
    try:
        encode(value)
    except NotPlainData:
        return False
    return True


def encode(value, _depth: int = 0):
    """A JSON-able tree for a plain-data value; lists stay lists, every other container is a one-key dict."""
    if _depth > MAX_DEPTH:
        raise NotPlainData(f"value nested deeper than {MAX_DEPTH} levels")
    t = type(value)
    if value is None or t is bool or t is str:
        return value
    if t is int:
        return value if -(2**62) < value < 2**62 else {"I": hex(value)}  # hex: no 4300-digit str limit
    if t is float:
        return {"F": value.hex()}  # exact, and keeps nan/inf out of JSON's grey zone
    if t is complex:
        return {"c": [value.real.hex(), value.imag.hex()]}
    if t is bytes:
        return {"b": value.hex()}  # hex rather than base64: binascii would be one more library in every fork
    d = _depth + 1
    if t is list:
        return [encode(v, d) for v in value]
    if t is tuple:
        return {"t": [encode(v, d) for v in value]}
    if t is set:
        return {"s": [encode(v, d) for v in value]}
    if t is frozenset:
        return {"f": [encode(v, d) for v in value]}
    if t is dict or t in _DICT_LIKE:
        return {"d": [[encode(k, d), encode(v, d)] for k, v in dict.items(value)]}
    if t is type and _TYPES.get(getattr(value, "__name__", None)) is value:
        return {"T": value.__name__}
    raise NotPlainData(f"{str(t.__module__)[:80]}.{str(t.__qualname__)[:80]} is not plain data")  # names are bounded


def decode(tree, _depth: int = 0):
    """Inverse of `encode`; raises ValueError on anything `encode` cannot have produced."""
    if _depth > MAX_DEPTH + 1:
        raise ValueError("wire value nested too deep")
    if tree is None or isinstance(tree, (bool, str, int)):
        return tree
    d = _depth + 1
    if isinstance(tree, list):
        return [decode(v, d) for v in tree]
    if not isinstance(tree, dict) or len(tree) != 1:
        raise ValueError(f"malformed wire value {str(tree)[:80]!r}")
    (tag, body), = tree.items()
    if tag == "I":
        return int(body, 16)
    if tag == "F":
        return float.fromhex(body)
    if tag == "c":
        return complex(float.fromhex(body[0]), float.fromhex(body[1]))
    if tag == "b":
        if not isinstance(body, str) or not _HEX.fullmatch(body):  # fromhex alone would accept spaces
            raise ValueError("malformed bytes value")
        return bytes.fromhex(body)
    if tag == "t":
        return tuple(decode(v, d) for v in body)
    if tag == "s":
        return {decode(v, d) for v in body}
    if tag == "f":
        return frozenset(decode(v, d) for v in body)
    if tag == "T":
        return _TYPES[body]
    if tag == "d":
        return {decode(k, d): decode(v, d) for k, v in body}
    raise ValueError(f"unknown wire tag {tag!r}")


def dumps(value) -> bytes:
    return json.dumps(encode(value), separators=(",", ":")).encode()


def loads(data: bytes):
    return decode(json.loads(data))
