"""Run a metricflow role with a ClickHouse that tests can switch off or slow down.

    python _writer_launcher.py <control-dir> writer --kafka ... --clickhouse chdb:///...

This is the real `metricflow` CLI and the real chDB store; the only change is
at the store's client boundary (its clients and its Arrow inserts). While
`<control-dir>/outage` exists, every store call raises clickhouse-connect's
OperationalError, which is what a refused or reset connection to a
ClickHouse server raises. While
`<control-dir>/slow` exists, each metric insert first sleeps the seconds
written in it (a writer that drains slower than clients send). While
`<control-dir>/slow_kafka` exists, an ingest node's every Kafka produce first
waits the seconds written in it (a broker that acks slower than clients send,
which is what fills the node's in-flight bound).

Why not a real outage: chDB runs inside the writer process, so it cannot be
stopped on its own, and no ClickHouse server can be installed on these
machines (see SERVICES.md).
"""

from __future__ import annotations

import asyncio
import os
import sys
import time

from clickhouse_connect.driver.exceptions import OperationalError

from metricflow.ingest import _kafka
from metricflow.store import _clickhouse, _metric_store

CONTROL = sys.argv[1]
_client = _metric_store.MetricStore.client
_insert = _metric_store.MetricStore.insert_metrics
_insert_arrow = _clickhouse.ClientPool.insert_arrow
_produce = _kafka.KafkaSink._produce


def _check_outage() -> None:
    if os.path.exists(os.path.join(CONTROL, "outage")):
        raise OperationalError("simulated outage: connection to ClickHouse refused")


def _faulty_client(self: _metric_store.MetricStore) -> object:
    _check_outage()
    return _client.fget(self)  # type: ignore[attr-defined]


def _faulty_insert_arrow(self: _clickhouse.ClientPool, *args: object) -> None:
    _check_outage()  # the chDB insert path does not go through the client
    _insert_arrow(self, *args)  # type: ignore[arg-type]


def _delay(name: str) -> float:
    try:
        with open(os.path.join(CONTROL, name)) as f:
            return float(f.read().strip() or 0)
    except FileNotFoundError:
        return 0.0


def _slow_insert(self: _metric_store.MetricStore, tables: object) -> None:
    time.sleep(_delay("slow"))
    _insert(self, tables)  # type: ignore[arg-type]


async def _slow_produce(self: _kafka.KafkaSink, *args: object) -> None:
    await asyncio.sleep(_delay("slow_kafka"))  # in flight already: counted by the caller
    await _produce(self, *args)  # type: ignore[arg-type]


_metric_store.MetricStore.client = property(_faulty_client)  # type: ignore[assignment]
_clickhouse.ClientPool.insert_arrow = _faulty_insert_arrow  # type: ignore[method-assign]
_metric_store.MetricStore.insert_metrics = _slow_insert  # type: ignore[method-assign]
_kafka.KafkaSink._produce = _slow_produce  # type: ignore[method-assign]

if __name__ == "__main__":
    from metricflow.server.cli import main

    sys.exit(main(sys.argv[2:]))
