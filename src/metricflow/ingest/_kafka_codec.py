"""The LZ4 level of the Kafka producer.

aiokafka compresses lz4 record batches at level 9 (LZ4HC, the broker's own
default) and has no setting for it. The ingest node's batches are large and
already columnar, so the fast level compresses nearly as well at a small
fraction of the CPU, and the writer decompresses lz4 several times faster than
zstd (figures: docs/operations.md, "lz4 level 1"). Consumers read any level.

`use_lz4_level` points aiokafka's record-batch builders (the compiled one and
the pure-Python fallback) at aiokafka's own lz4 encoder with the given level.
It is process-wide, as is the producer of an ingest node.
"""

from __future__ import annotations

import functools
import importlib
from typing import Any

_BUILDERS = ("aiokafka.record.default_records", "aiokafka.record._crecords.default_records")


def use_lz4_level(level: int) -> None:
    """Make aiokafka compress lz4 record batches at `level` (1-16)."""
    from aiokafka import codec  # server extra

    if not 1 <= level <= 16:
        raise ValueError(f"lz4 level must be in [1, 16], got {level}")
    encode = functools.partial(codec.lz4_encode, level=level)
    for name in _BUILDERS:
        try:
            module: Any = importlib.import_module(name)
        except ImportError:  # no compiled extension: the Python builder is used
            continue
        if not hasattr(module, "lz4_encode"):
            raise RuntimeError(f"{name} has no lz4_encode: aiokafka changed, see "
                               "metricflow/ingest/_kafka_codec.py")
        module.lz4_encode = encode
