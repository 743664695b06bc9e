"""What answers a variant's requests: an MLflow pyfunc model in process, or an HTTP endpoint.

`LocalModel` batches adaptively: while the model works on one batch, requests that
arrive wait in a list; when it is free, all of them (up to `max_batch_rows`) go into
one DataFrame and one `predict` call on the model's own thread. Under light load a
batch is one request and no time is spent waiting; under heavy load the per-call
costs (DataFrame, schema enforcement, the model's own overhead) are shared.
"""

from __future__ import annotations

import asyncio
import errno
import json
import logging
import socket
import time
from dataclasses import dataclass
from typing import Any

from metricflow._netguard import (
    literal_address,
    never_reach,
    private_or_loopback,
    refused_without_dns,
    resolved_addresses,
)
from metricflow.serving._serve_payload import (
    Rows,
    Signature,
    first_number,
    signature_of,
    split_output,
    to_frame,
)

log = logging.getLogger(__name__)


class ModelError(Exception):
    """The model raised while predicting (HTTP 500)."""

    took = 0.0
    """Seconds of the model call that raised (0 when no call was made)."""


@dataclass(slots=True)
class Answer:
    status: int
    body: bytes
    prediction: float | None = None


def load_pyfunc(model_uri: str) -> Any:
    """Load an MLflow pyfunc model (the `serve` extra brings mlflow)."""
    import mlflow.pyfunc

    return mlflow.pyfunc.load_model(model_uri)


class LocalModel:
    """A pyfunc model fed by an adaptive batcher on the event loop.

    Requests append to a pending list and schedule one flush with `call_soon`, so every
    request parsed in the same loop iteration joins one batch. The flush calls the model
    inline: a thread would not run Python models in parallel (the GIL), and handing
    batches to one costs a GIL hand-off per batch that showed up as multi-millisecond
    stalls in the benchmark (docs/serving.md). While the model runs, new requests queue
    in the sockets and form the next, larger batch. A shadow's model lingers instead
    (`linger_s`): its mirrors wait for a timer or a row count, as nobody waits for them.
    """

    kind = "model"

    def __init__(self, pyfunc: Any, version: str, *, max_batch_rows: int = 2048,
                 isolate_failures: bool = True, linger_s: float = 0.0,
                 linger_rows: int = 64) -> None:
        self.pyfunc = pyfunc
        self.isolate_failures = isolate_failures
        self.version = version
        self.signature: Signature | None = signature_of(pyfunc)
        self.max_batch_rows = max_batch_rows
        self.linger_s = linger_s
        """> 0 (shadows, whose callers wait for nothing): a batch waits this long for more
        requests, or until `linger_rows` rows are pending, so a mirror costs the event
        loop one model call per many requests instead of one per request."""
        self.linger_rows = linger_rows
        self._pending: list[tuple[Rows, asyncio.Future[Any]]] = []
        self._pending_rows = 0
        self._timer: asyncio.TimerHandle | None = None
        self._scheduled = False
        self.inflight = 0
        self._idle = asyncio.Event()
        self._idle.set()
        self.batches = 0
        self.batched_requests = 0
        self.closed = False

    async def answer(self, rows: Rows) -> Any:
        """The predictions for one request's rows (raises ModelError)."""
        return (await self.answer_timed(rows))[0]

    async def answer_timed(self, rows: Rows) -> tuple[Any, float]:
        """(predictions, seconds of the model call that made them)."""
        if self.closed:
            raise ModelError(f"version {self.version} was unloaded")
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[Any] = loop.create_future()
        self._pending.append((rows, fut))
        self._pending_rows += len(rows.rows)
        self.inflight += 1
        self._idle.clear()
        if not self._scheduled:
            self._scheduled = True
            if self.linger_s > 0:
                self._timer = loop.call_later(self.linger_s, self._flush)
            else:
                loop.call_soon(self._flush)
        elif self._timer is not None and self._pending_rows >= self.linger_rows:
            self._timer.cancel()  # enough for a batch: no more waiting
            self._timer = None
            loop.call_soon(self._flush)
        try:
            return await fut  # type: ignore[no-any-return]
        finally:
            self.inflight -= 1
            if not self.inflight:
                self._idle.set()

    def _flush(self) -> None:
        self._scheduled = False
        self._timer = None
        self._pending_rows = 0
        while self._pending:
            pending = self._pending
            cols = pending[0][0].columns
            take: list[tuple[Rows, asyncio.Future[Any]]] = []
            keep: list[tuple[Rows, asyncio.Future[Any]]] = []
            n = 0
            for item in pending:
                if item[0].columns == cols and (not take or n + len(item[0].rows)
                                                <= self.max_batch_rows):
                    take.append(item)
                    n += len(item[0].rows)
                else:
                    keep.append(item)
            self._pending = keep
            self.batches += 1
            self.batched_requests += len(take)
            t0 = time.perf_counter()
            results = self._run([r for r, _ in take])
            took = time.perf_counter() - t0
            for (_, fut), res in zip(take, results):
                if fut.done():
                    continue
                if isinstance(res, BaseException):
                    err = ModelError(f"{type(res).__name__}: {res}")
                    err.took = took
                    fut.set_exception(err)
                else:
                    fut.set_result((res, took))

    def _predict(self, items: list[Rows]) -> list[Any]:
        if len(items) == 1:
            r = items[0]
            return split_output(self.pyfunc.predict(to_frame(r.columns, r.rows, self.signature)),
                                [len(r.rows)])
        rows: list[list[Any]] = []
        for r in items:
            rows.extend(r.rows)
        out = self.pyfunc.predict(to_frame(items[0].columns, rows, self.signature))
        return split_output(out, [len(r.rows) for r in items])

    def _run(self, items: list[Rows]) -> list[Any]:
        """One call for the batch; if it raises, each request alone (so one bad request
        fails only itself), unless isolation is off (shadows: a model that always fails
        would otherwise cost one call per request)."""
        try:
            return self._predict(items)
        except Exception as e:
            if len(items) == 1 or not self.isolate_failures:
                return [e] * len(items)
        out: list[Any] = []
        for r in items:
            try:
                out.extend(self._predict([r]))
            except Exception as e:
                out.append(e)
        return out

    def direct(self, rows: Rows) -> Any:
        """One unbatched call (the benchmark's in-process baseline)."""
        return self._predict([rows])[0]

    async def drain(self, timeout: float) -> bool:
        """Wait for in-flight requests to finish; True if they did."""
        try:
            await asyncio.wait_for(self._idle.wait(), timeout)
            return True
        except TimeoutError:
            return False

    def close(self) -> None:
        self.closed = True
        self.pyfunc = None


MAX_PROXIED_ANSWER = 32 * 1024 * 1024


def refused_address(ip: Any, allow_private: bool) -> str:
    """Why a serve process must not connect to `ip` ("" if it may), as check_endpoint."""
    why = never_reach(ip)
    if why:
        return why
    if private_or_loopback(ip) and not allow_private:
        return ("a loopback or private address: start `metricflow serve` with "
                "--allow-private-endpoints to proxy to it")
    return ""


def check_endpoint(url: str, allow_private: bool) -> None:
    """Refuse an endpoint a serve process must not be turned into a proxy for: link-local,
    multicast and unspecified addresses (cloud metadata services) always, also in their
    IPv6 forms (`::ffff:169.254.169.254`: metricflow._netguard); loopback and private
    ranges unless `--allow-private-endpoints`. Raises ValueError naming the address and
    the flag."""
    import yarl  # the URL parser of the session that will connect (aiohttp's)

    try:
        parts = yarl.URL(url)
    except ValueError as e:
        raise ValueError(f"endpoint {url!r} does not parse ({e})") from None
    if parts.scheme not in ("http", "https") or not parts.host:
        raise ValueError(f"endpoint {url!r} must be an http(s) URL with a host")
    host = parts.host
    why = refused_without_dns(host)
    if why:
        raise ValueError(f"endpoint {url!r} {why}: refused")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    for ip in resolved_addresses(host, port):
        why = refused_address(ip, allow_private)
        if why and never_reach(ip):
            raise ValueError(f"endpoint {url!r} resolves to {ip}, {why}: refused")
        if why:
            raise ValueError(f"endpoint {url!r} resolves to {ip}, {why}")


def _guarded_connector(allow_private: bool) -> Any:
    """An aiohttp connector that connects only where check_endpoint allows.
    check_endpoint judged the URL when the variant loaded, but the session resolves the
    name again (as its DNS cache expires), and a name that answers differently later
    (DNS rebinding) would otherwise turn the serve process into a proxy to a metadata
    address. Its resolver drops refused addresses from each answer (so another address
    of the name is tried), and its socket factory refuses any address it is asked to
    connect to, an IP literal too (aiohttp's URL parser reads some hosts as literals that
    Python's reads as names: Unicode digits). The caller's 502 says only that the
    address was refused; the serve log names it."""
    import aiohttp

    def refused(address: Any) -> str:
        ip = literal_address(str(address))
        return "an unknown address" if ip is None else refused_address(ip, allow_private)

    def denied(host: str, address: Any, why: str) -> OSError:
        log.warning("serve: endpoint host %s at %s refused: %s", host, address, why)
        # (errno and text: aiohttp's connect error shows the text)
        return OSError(errno.EACCES, f"endpoint host {host}: its address is refused")

    class Guarded(aiohttp.ThreadedResolver):
        async def resolve(self, host: str, port: int = 0,
                          family: socket.AddressFamily = socket.AF_INET) -> Any:
            found = await super().resolve(host, port, family)
            kept = [r for r in found if not refused(r["host"])]
            if found and not kept:
                raise denied(host, found[0]["host"], refused(found[0]["host"]))
            return kept

    def make_socket(addr_info: Any) -> socket.socket:
        family, kind, proto, _, address = addr_info
        why = refused(address[0])
        if why:
            raise denied(str(address[0]), address[0], why)
        return socket.socket(family=family, type=kind, proto=proto)

    return aiohttp.TCPConnector(resolver=Guarded(), socket_factory=make_socket)


class ProxyModel:
    """A variant served by an external HTTP endpoint (e.g. another server's /invocations)."""

    kind = "endpoint"
    signature: Signature | None = None

    def __init__(self, endpoint: str, *, timeout_s: float = 30.0,
                 allow_private: bool = False) -> None:
        self.endpoint = endpoint
        self.version = ""
        self.timeout_s = timeout_s
        self.allow_private = allow_private
        self.inflight = 0
        self._session: Any = None

    async def forward(self, body: bytes, content_type: str) -> Answer:
        import aiohttp

        if self._session is None:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=self.timeout_s),
                connector=_guarded_connector(self.allow_private))
        self.inflight += 1
        try:
            async with self._session.post(self.endpoint, data=body, allow_redirects=False,
                                          headers={"Content-Type": content_type}) as r:
                data = await r.content.read(MAX_PROXIED_ANSWER + 1)
                if len(data) > MAX_PROXIED_ANSWER:
                    raise ValueError(f"its answer exceeds {MAX_PROXIED_ANSWER} bytes")
                pred = None
                if r.status == 200:
                    try:
                        pred = first_number(json.loads(data).get("predictions"))
                    except (ValueError, AttributeError):
                        pred = None
                return Answer(r.status, data, pred)
        finally:
            self.inflight -= 1

    async def drain(self, timeout: float) -> bool:
        deadline = asyncio.get_running_loop().time() + timeout
        while self.inflight and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.05)
        return not self.inflight

    def close(self) -> None:
        s, self._session = self._session, None
        if s is not None:
            asyncio.ensure_future(s.close())
