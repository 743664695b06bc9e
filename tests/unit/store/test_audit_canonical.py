"""The audit chain's hashed text: the fast C path writes exactly what the JSON encoder
writes (a difference would make every stored hash fail to verify)."""

from __future__ import annotations

import json

from metricflow.store.metadata._chain import GENESIS, _encode_fields, canonical, entry_hash

ROWS = [
    (1, "alice", "create_experiment", "experiment", "7", None, '{"a": 1}', None, None, None,
     None),
    (2**62, "zoë ünïcode 模型", "set_tag", "model_version", "m/1", '{"k": "v\\"q"}',
     "x\ny\tz\r\x00\x1f\x7f", 'quote " and \\ backslash', 12, "m", 3),
    (-5, "", "", "", "", "", "", "", 0, "", 0),
    (0, "emoji \U0001F600 and \u2028 line sep", "a", "b", "c", None, None, "\x08\x0c", -1,
     "n", -2**31),
]


def test_fast_text_is_the_json_encoders_text() -> None:
    slow = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), check_circular=False)
    for row in ROWS:
        assert _encode_fields(row) == slow.encode(list(row)), row
        assert canonical(*row) == slow.encode(list(row))
        assert json.loads(canonical(*row)) == list(row)


def test_hash_is_sha256_of_prev_and_text() -> None:
    import hashlib

    text = canonical(*ROWS[1])
    assert entry_hash(GENESIS, text) == hashlib.sha256((GENESIS + text).encode()).hexdigest()
