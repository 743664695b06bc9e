"""Read the run id and metric keys of a raw WriteBatch without parsing its columns.

The ingest Write stream receives raw bytes (the handler parses each batch once
and forwards the bytes as-is). Authorization needs only the run id and the
key dictionary, so this walks the top-level protobuf fields and skips the
large column payloads by their length prefix. Semantics match protobuf's:
the last `run_id` wins and repeated `metrics` messages merge.
"""

from __future__ import annotations

from metricflow.errors import InvalidArgument

_WRITE_SEQ, _WRITE_RUN_ID, _WRITE_METRICS = 2, 3, 4
_COLS_KEYS = 1


def _varint(buf: memoryview, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(buf) or shift > 63:
            raise ValueError("truncated varint")
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, pos
        shift += 7


def _fields(buf: memoryview) -> list[tuple[int, int, memoryview | int]]:
    """(field number, wire type, payload) of every top-level field."""
    out: list[tuple[int, int, memoryview | int]] = []
    pos = 0
    while pos < len(buf):
        tag, pos = _varint(buf, pos)
        num, wt = tag >> 3, tag & 7
        if num == 0:
            raise ValueError("field number 0")
        if wt == 0:
            v, pos = _varint(buf, pos)
            out.append((num, wt, v))
        elif wt == 1 or wt == 5:
            size = 8 if wt == 1 else 4
            if pos + size > len(buf):
                raise ValueError("truncated fixed field")
            pos += size
        elif wt == 2:
            n, pos = _varint(buf, pos)
            if pos + n > len(buf):
                raise ValueError("truncated length-delimited field")
            out.append((num, wt, buf[pos:pos + n]))
            pos += n
        else:
            raise ValueError(f"unsupported wire type {wt}")
    return out


def scan_seq(raw: bytes) -> int:
    """Best-effort `seq` of a WriteBatch (0 when unreadable), to address a rejection ack."""
    try:
        seq = 0
        for num, wt, payload in _fields(memoryview(raw)):
            if num == _WRITE_SEQ and wt == 0:
                seq = int(payload) & 0xFFFFFFFFFFFFFFFF  # type: ignore[arg-type]
        return seq
    except ValueError:
        return 0


def scan_write_batch(raw: bytes) -> tuple[str, list[str]]:
    """(run_id, metric keys) of a serialized WriteBatch; InvalidArgument if unreadable."""
    try:
        run_id = ""
        keys: list[str] = []
        for num, wt, payload in _fields(memoryview(raw)):
            if num == _WRITE_RUN_ID and wt == 2:
                run_id = bytes(payload).decode("utf-8")  # type: ignore[arg-type]
            elif num == _WRITE_METRICS and wt == 2:
                for n2, wt2, p2 in _fields(payload):  # type: ignore[arg-type]
                    if n2 == _COLS_KEYS and wt2 == 2:
                        keys.append(bytes(p2).decode("utf-8"))  # type: ignore[arg-type]
        return run_id, keys
    except (ValueError, UnicodeDecodeError):
        raise InvalidArgument("WriteBatch could not be parsed as protobuf",
                              field="WriteBatch", received=len(raw)) from None
