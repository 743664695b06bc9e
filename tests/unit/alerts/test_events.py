"""The event bus: emit never blocks or raises; subscribers get events in order."""

from __future__ import annotations

import threading
import time

from metricflow._events import EVENTS, Event, EventBus, emit, emit_run_ended


def test_subscriber_gets_events_in_order_on_its_own_thread() -> None:
    bus = EventBus()
    got: list[tuple[str, str]] = []
    threads: set[str] = set()

    def h(ev: Event) -> None:
        got.append((ev.name, ev.data["i"]))
        threads.add(threading.current_thread().name)

    bus.subscribe(h)
    for i in range(100):
        bus.emit("run.created", "run:a", {"i": i})
    assert bus.flush(5)
    assert [i for _, i in got] == list(range(100))
    assert threads == {"metricflow-events"}


def test_slow_subscriber_never_blocks_emit_and_full_queue_drops() -> None:
    bus = EventBus(capacity=10)
    gate = threading.Event()
    bus.subscribe(lambda ev: gate.wait(5))
    t0 = time.perf_counter()
    for i in range(1000):
        bus.emit("run.created", "run:a", {"i": i})
    assert time.perf_counter() - t0 < 1.0  # a hung subscriber costs the caller nothing
    assert bus.dropped >= 1000 - 11
    gate.set()
    assert bus.flush(5)


def test_failing_subscriber_and_bad_owner_never_raise() -> None:
    bus = EventBus()
    seen: list[str] = []

    def boom(ev: Event) -> None:
        raise RuntimeError("x")

    bus.subscribe(boom)
    bus.subscribe(lambda ev: seen.append(ev.name))
    bus.emit("alert.firing", "s", {"a": 1})
    assert bus.flush(5) and seen == ["alert.firing"]
    emit(object(), "run.created", subject="s", data={})  # no bus: dropped quietly
    emit_run_ended(None, "r", "FAILED")


def test_no_subscriber_is_a_no_op_and_names_are_mlflow_where_shared() -> None:
    bus = EventBus()
    bus.emit("run.created", "s", {})
    assert bus.emitted == 0
    assert {"model_version.created", "model_version_alias.created",
            "model_version_alias.deleted", "registered_model.created"} <= EVENTS


def test_link_local_destinations_are_refused() -> None:
    from metricflow.alerts._webhooks import forbidden_destination

    assert "link-local" in forbidden_destination("http://169.254.169.254/latest/meta-data/")
    assert forbidden_destination("http://127.0.0.1:8080/hook") == ""


def test_the_host_checked_is_the_host_connected_to() -> None:
    """Parsers disagree on backslashes and %-escapes in a host; the check reads the URL
    as the POST's library does, and such URLs are refused when a webhook is created."""
    import pytest

    from metricflow.alerts import webhook_from_dict
    from metricflow.alerts._webhooks import forbidden_destination
    from metricflow.errors import InvalidArgument

    for url in ("http://169.254.169.254\\.example.com/x", "http://%31%36%39.254.169.254/x"):
        assert "link-local" in forbidden_destination(url), url
        with pytest.raises(InvalidArgument, match="backslash"):
            webhook_from_dict({"name": "x", "url": url, "events": ["alert.firing"]})
    assert "does not parse" in forbidden_destination("http://[::1/x")
    assert forbidden_destination("http://[::1]:9/x") == ""
