"""The serve process's HTTP routes: /invocations, /feedback, /ping, /health, /version, /metrics."""

from __future__ import annotations

import asyncio
import json
import math
import random
import re
import time
from typing import Any

from metricflow.serving._serve_app import ServeState
from metricflow.serving._serve_http import Request, Response
from metricflow.serving._serve_log import TAG_DEPLOYMENT, parse_request_id
from metricflow.serving._serve_models import ModelError
from metricflow.serving._serve_payload import (
    BadInput,
    CsvDoc,
    csv_media,
    decode,
    decode_csv,
    first_number,
    parse,
    scoring_body,
    sticky_value,
)
from metricflow.serving._serve_router import Slot

_OUTCOME_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,100}$")
_PROM = b"text/plain; version=0.0.4; charset=utf-8"


def _err(status: int, code: str, message: str, **extra: Any) -> Response:
    return Response(status, json.dumps({"error_code": code, "message": message,
                                        **extra}).encode())


class Routes:
    """Answers requests from the current routing table of a `ServeState`."""

    def __init__(self, state: ServeState, version: str) -> None:
        self.state = state
        self.version = version
        self._local = 0
        self._known_runs: dict[str, bool] = {}

    async def handle(self, req: Request) -> Response:
        path = req.path
        if path == "/invocations":
            if req.method != "POST":
                return _err(405, "METHOD_NOT_ALLOWED", "/invocations takes POST")
            return await self.invocations(req)
        if req.method not in ("GET", "HEAD") and path in ("/ping", "/health", "/version",
                                                          "/metrics"):
            return _err(405, "METHOD_NOT_ALLOWED", f"{path} takes GET")
        if path in ("/ping", "/health"):
            return self.health()
        if path == "/version":
            return self.version_info()
        if path == "/metrics":
            return Response(200, self.state.metrics.render(), _PROM)
        if path == "/feedback":
            if req.method != "POST":
                return _err(405, "METHOD_NOT_ALLOWED", "/feedback takes POST")
            return await self.feedback(req)
        return _err(404, "ENDPOINT_NOT_FOUND", f"no route {path!r}; this server answers "
                    "POST /invocations, POST /feedback, GET /ping /health /version /metrics")

    # -------------------------------------------------------------- scoring
    async def invocations(self, req: Request) -> Response:
        t0 = time.perf_counter()
        st = self.state
        table = st.table
        ct = req.headers.get("content-type", "application/json")
        is_csv, charset = csv_media(ct)
        if not is_csv and "json" not in ct.partition(";")[0].lower():
            st.metrics.observe("", "", 415, time.perf_counter() - t0)
            return _err(415, "BAD_REQUEST", f"Content-Type must be application/json or "
                        f"text/csv; got {ct[:60]!r}")
        try:
            doc = (decode_csv(req.body, charset, st.cfg.max_csv_rows) if is_csv
                   else decode(req.body))
        except BadInput as e:
            st.metrics.observe("", "", e.status, time.perf_counter() - t0)
            return Response(e.status, e.body())
        key = None
        sk = table.sticky
        if sk is not None:
            key = (req.headers.get(sk.name.lower()) if sk.source == "header"
                   else sticky_value(doc, sk.name))
        slot = table.pick(key)
        if slot is None:
            st.metrics.observe("", "", 503, time.perf_counter() - t0)
            return _err(503, "UNAVAILABLE", f"deployment {st.cfg.deployment!r} has no loaded "
                        f"variant yet{'; ' + st.last_sync_error if st.last_sync_error else ''}")
        status, body, pred, rid = await self._answer(slot, doc, req.body, ct, t0)
        # Mirrors start after the caller's answer is ready, so a shadow's model call never
        # sits in front of it in the event loop.
        for sh in table.shadows:
            if sh.model is not None and (sh.weight <= 0 or sh.weight >= 1
                                         or random.random() < sh.weight):
                if sh.model.inflight < st.cfg.shadow_max_inflight:
                    st.spawn(self._mirror(sh, doc, req.body, ct))
                else:
                    st.metrics.shadow.labels(st.cfg.deployment, sh.name, sh.version,
                                             "skipped").inc()
        return Response(status, body, headers=(("X-Metricflow-Variant", slot.name),
                                               ("X-Metricflow-Version", slot.version),
                                               ("X-Request-Id", rid)))

    async def _answer(self, slot: Slot, doc: dict[str, Any], raw: bytes, ct: str,
                      t0: float) -> tuple[int, bytes, float | None, str]:
        st = self.state
        model = slot.model
        pl = st.predictions
        rl = pl.runlog(slot.name, slot.version) if pl is not None else None
        if rl is not None:
            step = rl.next_step()
            rid = f"{rl.run_id}-{step}"
        else:
            self._local += 1
            step, rid = 0, f"{st.instance}-{self._local}"
        pred: float | None = None
        if model.kind == "endpoint":
            try:
                # A CSV body goes on as it came; a JSON one as its scoring payload only.
                ans = await (model.forward(raw, ct) if isinstance(doc, CsvDoc)
                             else model.forward(scoring_body(doc), "application/json"))
                status, body, pred = ans.status, ans.body, ans.prediction
            except Exception as e:  # the endpoint is down or timed out
                status, body = 502, json.dumps({
                    "error_code": "BAD_GATEWAY", "message": f"endpoint {model.endpoint} failed: "
                    f"{type(e).__name__}: {e}", "variant": slot.name, "request_id": rid}).encode()
        else:
            try:
                rows = parse(doc, model.signature)
            except BadInput as e:
                status, body = e.status, e.body()
            else:
                waited = time.perf_counter()
                try:
                    if slot.shadow:  # its latency: its own work, not the wait for a batch
                        part, took = await model.answer_timed(rows)
                        t0 += time.perf_counter() - waited - took
                    else:
                        part = await model.answer(rows)
                    status = 200
                    body = b'{"predictions": ' + json.dumps(part).encode() + b"}"
                    if st.cfg.log_outputs:
                        pred = first_number(part)
                except ModelError as e:
                    if slot.shadow:
                        t0 += time.perf_counter() - waited - e.took
                    status, body = 500, json.dumps({
                        "error_code": "INTERNAL_ERROR", "message": f"the model raised {e}",
                        "variant": slot.name, "version": slot.version,
                        "request_id": rid}).encode()
        dt = time.perf_counter() - t0
        ms = dt * 1000.0
        if slot.shadow:
            st.metrics.shadow.labels(st.cfg.deployment, slot.name, slot.version,
                                     "ok" if status < 400 else str(status)).inc()
        else:
            st.metrics.observe(slot.name, slot.version, status, dt)
            st.window(slot.name, slot.version).add(ms, status >= 500)
        if pl is not None:
            m = {"latency_ms": ms, "status": float(status), "error": 1.0 if status >= 500 else 0.0}
            if pred is not None and math.isfinite(pred):
                m["prediction"] = pred
            if not pl.record(rl, step, int(time.time() * 1000), m):
                st.metrics.log_dropped.labels(st.cfg.deployment).inc()
        return status, body, pred, rid

    async def _mirror(self, slot: Slot, doc: dict[str, Any], raw: bytes, ct: str) -> None:
        """A shadow's copy: answered, measured, logged, and discarded; nothing reaches the
        caller, whatever happens."""
        try:
            await self._answer(slot, doc, raw, ct, time.perf_counter())
        except Exception:  # a shadow failure must stay invisible
            self.state.metrics.shadow.labels(self.state.cfg.deployment, slot.name,
                                             slot.version, "crashed").inc()

    # ------------------------------------------------------------- feedback
    async def feedback(self, req: Request) -> Response:
        st = self.state
        try:
            doc = json.loads(req.body)
        except (ValueError, UnicodeDecodeError) as e:
            return _err(400, "BAD_REQUEST", f"request body is not valid JSON ({e})")
        if not isinstance(doc, dict):
            return _err(400, "BAD_REQUEST", "request body must be a JSON object")
        rid = doc.get("request_id")
        parsed = parse_request_id(rid) if isinstance(rid, str) else None
        if parsed is None:
            return _err(400, "BAD_REQUEST", f"request_id must be the X-Request-Id of an answer "
                        f"(<run id>-<step>); got {str(rid)[:80]!r}", field="request_id")
        outcomes = doc.get("outcomes")
        if outcomes is None:
            outcomes = {k: doc[k] for k in ("label", "outcome") if k in doc}
        if not isinstance(outcomes, dict) or not outcomes:
            return _err(400, "BAD_REQUEST", "give outcomes as {\"outcomes\": {name: number}} or "
                        "a numeric \"label\" / \"outcome\"", field="outcomes")
        values: dict[str, float] = {}
        for k, v in outcomes.items():
            if not isinstance(k, str) or not _OUTCOME_NAME.match(k):
                return _err(400, "BAD_REQUEST", f"outcome name must match "
                            f"{_OUTCOME_NAME.pattern}; got {str(k)[:120]!r}", field="outcomes")
            if isinstance(v, bool):
                v = float(v)
            if not isinstance(v, int | float) or not math.isfinite(v):
                return _err(400, "BAD_REQUEST", f"outcome {k!r} must be a finite number; got "
                            f"{str(v)[:40]!r}", field=f"outcomes.{k}")
            values[f"outcome.{k}"] = float(v)
        pl = st.predictions
        if pl is None:
            return _err(503, "UNAVAILABLE", "prediction logging is off (--no-log-predictions "
                        "or no --tracking-uri): feedback has nowhere to go")
        run_id, step = parsed
        try:
            if not await self._ours(run_id):
                return _err(404, "NOT_FOUND", f"request {rid!r} was not answered by deployment "
                            f"{st.cfg.deployment!r}", field="request_id")
            pl.outcome(run_id, step, values)
        except Exception as e:  # the tracking server is down or refused: say so, retry later
            return _err(503, "UNAVAILABLE", f"feedback could not be logged: "
                        f"{type(e).__name__}: {e}", retry_after_s=1.0)
        return Response(200, json.dumps({"request_id": rid, "run_id": run_id, "step": step,
                                         "logged": sorted(values)}).encode())

    async def _ours(self, run_id: str) -> bool:
        known = self._known_runs.get(run_id)
        if known is not None:
            return known
        pl = self.state.predictions
        assert pl is not None
        try:
            run = await asyncio.to_thread(pl.client.get_run, run_id)
        except Exception as e:
            if type(e).__name__ == "NotFound":
                self._known_runs[run_id] = False
                return False
            raise
        ok = run.tags.get(TAG_DEPLOYMENT) == self.state.cfg.deployment
        if len(self._known_runs) > 10_000:
            self._known_runs.clear()
        self._known_runs[run_id] = ok
        return ok

    # --------------------------------------------------------------- status
    def health(self) -> Response:
        st = self.state
        loaded = [s.name for s in st.table.routed if s.model is not None]
        if not loaded:
            return _err(503, "UNAVAILABLE", f"deployment {st.cfg.deployment!r}: no variant "
                        f"loaded yet{'; ' + st.last_sync_error if st.last_sync_error else ''}")
        return Response(200, json.dumps({"status": "ok", "loaded": loaded}).encode())

    def version_info(self) -> Response:
        st = self.state
        t = st.table
        return Response(200, json.dumps({
            "metricflow": self.version, "deployment": st.cfg.deployment,
            "instance": st.instance,
            "variants": [{"name": s.name, "version": s.version, "weight": s.weight,
                          "shadow": s.shadow, "loaded": s.model is not None,
                          "out_of_rotation": s.name in t.out,
                          "kind": getattr(s.model, "kind", None),
                          "model_calls": getattr(s.model, "batches", None),
                          "requests_in_calls": getattr(s.model, "batched_requests", None)}
                         for s in t.routed + t.shadows],
            "fallback": t.fallback,
            "sticky_key": None if t.sticky is None else str(t.sticky)}).encode())
