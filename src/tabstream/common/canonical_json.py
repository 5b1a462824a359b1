"""Canonical JSON text: ``json.dumps(value, sort_keys=True, separators=(",", ":"),
ensure_ascii=False)``, byte for byte, written by orjson wherever its text is the same.

Stored projection rows, the rebuild digest and request digests were made with json's text, so
the text must not change; orjson writes it about ten times faster. The two differ only on
floats from 1e-9 to 1e-4 in magnitude (orjson writes ``1e-7`` and ``0.00001`` where json writes
``1e-07`` and ``1e-05``), integers past 64 bits and lone surrogates (orjson refuses them), and
NaN or infinity (which the events refuse). Those values go to json.
"""

from __future__ import annotations

import json
from typing import Any

import orjson

_JSON = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False)
_DIGITS = frozenset(b"0123456789")
_BEFORE_NUMBER = frozenset(b":,[-")
_AFTER_NUMBER = frozenset(b",]}")


def canonical_json(value: Any) -> str:
    """The canonical JSON text of ``value`` (see the module)."""
    try:
        text = orjson.dumps(value, option=orjson.OPT_SORT_KEYS)
    except TypeError:
        return _JSON.encode(value)
    if may_differ(text):
        return _JSON.encode(value)
    return text.decode()


def may_differ(text: bytes) -> bool:
    """Whether orjson's ``text`` may hold a number json writes differently: ``<digit>e-<digit>``
    ending the number (orjson's exponents there have one digit), or ``0.0000`` starting one.
    Text inside a string can look the same, which only sends that value to json."""
    at = text.find(b"e-")
    while at != -1:
        if at and text[at - 1] in _DIGITS and _one_digit_then_end(text, at + 2):
            return True
        at = text.find(b"e-", at + 2)
    at = text.find(b"0.0000")
    while at != -1:
        if not at or text[at - 1] in _BEFORE_NUMBER:
            return True
        at = text.find(b"0.0000", at + 1)
    return False


def _one_digit_then_end(text: bytes, at: int) -> bool:
    """A digit at ``at``, then the end of a number (``,``, ``]``, ``}`` or the text's end)."""
    if at >= len(text) or text[at] not in _DIGITS:
        return False
    return at + 1 == len(text) or text[at + 1] in _AFTER_NUMBER
