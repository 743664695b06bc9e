"""Webhooks from a real `metricflow server` process to local HTTP receivers: registry and
run events, signatures, order per subject under receiver errors, retries, dead letters
and their redelivery, the test endpoint, the Slack format, and a hung receiver that
must not slow ingest or the registry."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator

import pytest
from alerts_support import Proc, Receiver, wait_for

import metricflow as mf
from metricflow.alerts import verify

SECRET = "k" * 16  # the shortest secret a webhook may have


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Proc]:
    tmp = tmp_path_factory.mktemp("webhooks")
    env = dict(os.environ)
    env.update(METRICFLOW_WEBHOOK_BACKOFF_S="0.05", METRICFLOW_WEBHOOK_MAX_ATTEMPTS="4",
               METRICFLOW_WEBHOOK_TIMEOUT_S="1")
    p = Proc("server", ["--data-dir", str(tmp / "data")], tmp / "server.log", env)
    yield p
    p.stop()


def _hook(server: Proc, rcv: Receiver, events: list[str], **kw: object) -> str:
    out = server.api("POST", "/webhooks/create", {"url": rcv.url, "events": events,
                                                  "secret": SECRET, **kw})
    return str(out["webhook"]["webhook_id"])


def test_registry_events_in_order_per_subject_despite_errors(server: Proc) -> None:
    seen: dict[str, int] = {}
    rcv: Receiver

    def respond(n: int) -> int:
        # Every third delivery fails twice (503) before it is taken: the retried delivery
        # must keep its place, the ones behind it wait for it.
        did = rcv.got[n]["json"]["delivery_id"]
        seen[did] = seen.get(did, 0) + 1
        return 503 if int(did, 16) % 3 == 0 and seen[did] <= 2 else 200

    rcv = Receiver(respond=respond)
    try:
        _hook(server, rcv, ["registered_model.created", "model_version.created",
                            "model_version_alias.created", "model_version_alias.deleted",
                            "model_version.stage_changed"])
        with mf.Client(server.uri) as c:
            reg = c.registry
            for m in ("m1", "m2"):
                reg.create_registered_model(m)
            for v in range(1, 9):
                for m in ("m1", "m2"):
                    reg.create_model_version(m, f"s3://b/{m}/{v}")
                    reg.set_registered_model_alias(m, "champion", str(v))
            reg.delete_registered_model_alias("m1", "champion")
        want = 2 + 2 * 8 * 2 + 1
        wait_for(lambda: len({g["json"]["delivery_id"] for i, g in enumerate(rcv.got)
                              if rcv.respond_codes[i] == 200}) >= want, 60,
                 f"{want} deliveries taken")
        for m in ("m1", "m2"):
            delivered = []  # the first 2xx of each delivery, in arrival order
            ok = {i for i, g in enumerate(rcv.got) if rcv.respond_codes[i] == 200}
            for i, g in enumerate(rcv.got):
                j = g["json"]
                if i in ok and j["subject"] == f"model:{m}":
                    delivered.append((j["event"], j["data"].get("version"),
                                      j["data"].get("alias")))
            expect = [("registered_model.created", None, None)]
            for v in range(1, 9):
                expect += [("model_version.created", str(v), None),
                           ("model_version_alias.created", str(v), "champion")]
            if m == "m1":
                expect.append(("model_version_alias.deleted", "8", "champion"))
            assert delivered == expect, m
        assert rcv.respond_codes.count(503) >= 4  # retries did happen
        mv = next(g["json"] for g in rcv.got if g["json"]["event"] == "model_version.created")
        assert set(mv["data"]) >= {"name", "version", "source", "run_id", "tags", "description"}
        assert all(verify(SECRET, g["headers"], g["body"]) for g in rcv.got)
    finally:
        rcv.close()


def test_run_events_retries_dead_letters_and_redelivery(server: Proc) -> None:
    failing = {"on": True}
    rcv = Receiver(respond=lambda n: 503 if failing["on"] else 200)
    try:
        wid = _hook(server, rcv, ["run.created", "run.finished", "run.failed"])
        with mf.Client(server.uri, linger_ms=10) as c:
            run = c.create_run("0").info.run_id
            c.set_terminated(run, "FAILED")
        # 4 attempts each, then both are dead letters
        def dead_letters() -> list[dict]:
            got = server.api("GET", "/webhooks/deliveries", webhook_id=wid,
                             status="dead")["deliveries"]
            return [d for d in got if d["payload"]["data"]["run_id"] == run]

        dead = wait_for(lambda: len(dead_letters()) == 2 and dead_letters(), 30,
                        "two dead letters")
        assert sorted(d["event"] for d in dead) == ["run.created", "run.failed"]
        assert all(d["attempts"] == 4 and d["last_status_code"] == 503 for d in dead)
        attempts = [g for g in rcv.got if g["json"]["data"].get("run_id") == run]
        assert len(attempts) == 8
        failing["on"] = False
        out = server.api("POST", "/webhooks/redeliver", {"webhook_id": wid})
        assert out["redelivered"] == 2
        wait_for(lambda: len(server.api("GET", "/webhooks/deliveries", webhook_id=wid,
                                         status="delivered")["deliveries"]) == 2, 30,
                 "redelivered")
        ok = [g["json"] for g in rcv.got[len(attempts):]]
        assert [j["event"] for j in ok] == ["run.created", "run.failed"]  # in order
        assert ok[1]["data"]["status"] == "FAILED" and ok[0]["data"]["experiment_id"] == "0"
    finally:
        rcv.close()


def test_test_endpoint_and_slack_format(server: Proc) -> None:
    rcv = Receiver()
    try:
        wid = _hook(server, rcv, ["alert.firing"], payload_format="slack")
        out = server.api("POST", "/webhooks/test", {"webhook_id": wid})
        assert out["delivered"] is True and out["status_code"] == 200
        with mf.Client(server.uri, linger_ms=10) as c:
            run = c.create_run("0").info.run_id
        server.api("POST", "/alerts/notify", {"run_id": run, "title": "GPU idle",
                                              "text": "5% for 10 min", "level": "warning"})
        got = wait_for(lambda: [g for g in rcv.got if "GPU idle" in g["json"].get("text", "")],
                       20, "slack alert")
        assert set(got[0]["json"]) == {"text"}
        assert got[0]["json"]["text"].startswith("[WARNING] FIRING: GPU idle")
        assert verify(SECRET, got[0]["headers"], got[0]["body"])
    finally:
        rcv.close()


def test_hung_receiver_does_not_slow_ingest_or_the_registry(server: Proc) -> None:
    rcv = Receiver()
    rcv.hang.set()  # every request waits (the dispatcher's timeout ends each attempt)
    healthy = Receiver()
    wid = ""
    try:
        wid = _hook(server, rcv, ["run.created", "run.finished", "model_version.created",
                                  "registered_model.created"])
        _hook(server, healthy, ["run.created"])
        with mf.Client(server.uri, linger_ms=10) as c:
            t0 = time.monotonic()
            slowest = 0.0
            for _ in range(30):
                s = time.monotonic()
                run = c.create_run("0").info.run_id
                c.log_metrics(run, {f"k{j}": float(j) for j in range(50)}, step=0)
                c.set_terminated(run, "FINISHED")
                slowest = max(slowest, time.monotonic() - s)
            c.flush()
            c.registry.create_registered_model("hung")
            for _ in range(10):
                s = time.monotonic()
                c.registry.create_model_version("hung", "s3://b/x")
                slowest = max(slowest, time.monotonic() - s)
            total = time.monotonic() - t0
        # 30 runs x 2 events + 11 registry events queued behind a receiver that answers
        # nothing: with a 1 s timeout per attempt, waiting on it would take minutes.
        assert len(rcv.got) >= 1
        assert total < 20, total
        assert slowest < 2.0, slowest
        pending = server.api("GET", "/webhooks/deliveries", status="pending")["deliveries"]
        sending = server.api("GET", "/webhooks/deliveries", status="sending")["deliveries"]
        assert len(pending) + len(sending) >= 20  # queued, not waited for
        # The hung receiver holds its share of senders only: another webhook's
        # deliveries go on meanwhile.
        wait_for(lambda: len(healthy.events("run.created")) >= 30, 20,
                 "the healthy receiver's 30 run.created")
    finally:
        healthy.close()
        if wid:  # its backlog would keep the dispatcher busy for the next tests
            server.api("POST", "/webhooks/delete", {"webhook_id": wid})
        rcv.close()


def test_stage_and_deployment_events_reach_subscribers(server: Proc) -> None:
    rcv = Receiver()
    try:
        _hook(server, rcv, ["model_version.stage_changed", "deployment.changed"])
        with mf.Client(server.uri) as c:
            c.registry.create_registered_model("dep")
            c.registry.create_model_version("dep", "s3://b/dep/1")
            c.registry.transition_model_version_stage("dep", "1", "Staging")
        server.api("POST", "/deployments/create", {
            "name": "web", "model_name": "dep",
            "variants": [{"name": "main", "version": "1", "weight": 1.0}]})
        got = wait_for(lambda: len(rcv.events()) >= 2 and rcv.events(), 30, "both events")
        by = {g["event"]: g for g in got}
        st = by["model_version.stage_changed"]["data"]
        assert (st["name"], st["version"], st["from_stage"], st["to_stage"]) == (
            "dep", "1", "None", "Staging")
        dep = by["deployment.changed"]
        assert dep["subject"] == "deployment:web" and dep["data"]["model_name"] == "dep"
    finally:
        rcv.close()
