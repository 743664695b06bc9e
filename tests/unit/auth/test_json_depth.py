"""nested_deeper_than (auth/_http_input.py): the column-wise path for bodies without
escapes agrees with the string-stripping regex path on every body."""

from __future__ import annotations

import json
import random

import numpy as np

from metricflow.auth import _http_input as h


def _by_regex(body: bytes, limit: int) -> bool:
    """The reference: strings cut out by the regex, then the bracket depth."""
    marks = h._STRING.sub(b"", body).translate(None, h._NOT_BRACKETS)
    if not marks:
        return False
    b = np.frombuffer(marks, dtype=np.uint8)
    return int(np.cumsum(np.where((b == ord("[")) | (b == ord("{")), 1, -1)).max()) > limit


def test_agrees_with_the_regex_path_on_random_bodies() -> None:
    rnd = random.Random(15)
    alphabet = b'[]{}"ab,: '
    for _ in range(5000):
        body = bytes(rnd.choice(alphabet) for _ in range(rnd.randint(0, 300)))
        for limit in (2, 5, 100):
            assert h.nested_deeper_than(body, limit) == _by_regex(body, limit), body


def test_brackets_inside_strings_do_not_nest() -> None:
    assert h.nested_deeper_than(b'{"a":' * 101 + b"1" + b"}" * 101)
    assert not h.nested_deeper_than(b'{"a":' * 100 + b"1" + b"}" * 100)
    assert not h.nested_deeper_than(b'{"a":"' + b"[" * 500 + b'"}')
    assert not h.nested_deeper_than(b'{"a":"' + b"[" * 500)  # unterminated string
    # with an escaped quote (the regex path): the string goes on past it
    assert not h.nested_deeper_than(b'{"a":"\\"' + b"[" * 500 + b'"}')
    assert h.nested_deeper_than(b'{"a":"\\\\"' + b",[" * 101 + b"]" * 101 + b"}")


def test_a_log_batch_body_is_not_too_deep() -> None:
    body = json.dumps({"run_id": "a" * 32, "metrics": [
        {"key": f"k{i % 100}", "value": 0.5, "timestamp": 1, "step": i} for i in range(1000)]})
    assert not h.nested_deeper_than(body.encode())


def test_a_lone_surrogate_is_found_and_a_pair_or_an_escaped_backslash_is_not() -> None:
    assert h.lone_surrogate(b'{"run_id": "x", "key": "k", "value": "\\udfff"}') == "body.value"
    assert h.lone_surrogate(b'{"tags": [{"key": "a\\ud800b"}]}') == "body.tags[0].key"
    assert h.lone_surrogate(b'{"a": [1, {"\\uDBFF": 1}]}') == "body.a[1] (a key)"
    # an emoji as json.dumps writes it (a valid pair), a backslash then "ud800" (text)
    assert h.lone_surrogate(json.dumps({"v": "ok \U0001F600"}).encode()) is None
    assert h.lone_surrogate(b'{"a": "\\\\ud800"}') is None
    assert h.lone_surrogate(b'not json \\ud800') is None  # its own parser answers
    assert "lone UTF-16 surrogate" in h.lone_surrogate_message("body.value")
