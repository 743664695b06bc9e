"""A raw chDB connection closed by the pool while another thread inserts through it
is closed only once that insert returns, and refuses inserts after (a handle left
open binds the process to the store's data path)."""

from __future__ import annotations

import threading

import pytest

from metricflow.store._clickhouse import _ChdbConn


class _SlowConn:
    def __init__(self) -> None:
        self.in_query = threading.Event()
        self.finish = threading.Event()
        self.events: list[str] = []

    def query(self, sql: str) -> None:
        self.events.append("query")
        self.in_query.set()
        assert self.finish.wait(5)
        self.events.append("query done")

    def close(self) -> None:
        self.events.append("close")


def test_close_waits_for_the_running_insert_then_refuses_more() -> None:
    raw = _SlowConn()
    conn = _ChdbConn(raw)

    def insert() -> None:
        with conn.lock:
            conn.conn.query("INSERT ...")

    t = threading.Thread(target=insert)
    t.start()
    assert raw.in_query.wait(5)
    closer = threading.Thread(target=conn.close)
    closer.start()
    closer.join(0.2)
    assert closer.is_alive(), "the connection was closed under a running insert"
    raw.finish.set()
    t.join(5)
    closer.join(5)
    assert raw.events == ["query", "query done", "close"]
    assert conn.conn is None
    conn.close()  # twice is harmless
    assert raw.events.count("close") == 1


def test_an_insert_after_the_pool_closed_is_refused(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from metricflow.store._clickhouse import ClientPool

    pool = ClientPool(f"chdb://{tmp_path}")
    conn = _ChdbConn(_SlowConn())
    pool._local.chdb = conn  # the thread's raw connection, as insert_arrow opens it
    pool._all.append(conn)
    pool.close()
    with pytest.raises(RuntimeError, match="is closed"):
        pool.insert_arrow("db.t", type("T", (), {"column_names": ["a"]})(), {})
