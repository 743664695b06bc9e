"""Webhook delivery: signed POSTs from the outbox, retried with backoff, in order per subject.

Each delivery is one POST of a JSON body with these headers:

    X-Metricflow-Event:        the event name (model_version.created, alert.firing, ...)
    X-Metricflow-Delivery-Id:  the delivery's id (the same on every retry)
    X-Metricflow-Timestamp:    Unix seconds when this attempt was signed
    X-Metricflow-Signature:    v1,<base64 HMAC-SHA256(secret, "<id>.<timestamp>.<body>")>

A receiver recomputes the signature and refuses a timestamp older than a few
minutes (replay). A 2xx answer delivers; anything else (or no answer within
`timeout_s`) is retried after `backoff_s * 2**attempt` (capped, with jitter) until
`max_attempts`, then the delivery is dead: listed as a dead letter, redeliverable.
The sender claims only the head delivery of each (webhook, subject), so one
subject's events arrive in order; other subjects go on meanwhile, on a pool of
threads, so a hung receiver holds at most its own subjects' deliveries.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import os
import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import requests
import urllib3

from metricflow import __version__
from metricflow._events import Event
from metricflow._netguard import never_reach, refused_without_dns, resolved_addresses
from metricflow.alerts import _metrics as am
from metricflow.alerts._cutoff import Watchdog, note_connections
from metricflow.alerts._model import Webhook
from metricflow.alerts._store import AlertStore, Delivery, now_ms
from metricflow.errors import NotFound

log = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Metricflow-Signature"
TIMESTAMP_HEADER = "X-Metricflow-Timestamp"
DELIVERY_HEADER = "X-Metricflow-Delivery-Id"
EVENT_HEADER = "X-Metricflow-Event"
USER_AGENT = f"metricflow-webhooks/{__version__}"
ERROR_TEXT_BYTES = 2000
"""How much of a receiver's answer is read (the start of an error's text is logged)."""
ENV_TTL_S = 30.0
"""How long the environment's proxy, CA bundle and .netrc settings for a webhook URL
are reused before they are looked up again."""


def sign(secret: str, delivery_id: str, timestamp: int, body: bytes) -> str:
    """The signature header's value for one attempt."""
    msg = f"{delivery_id}.{timestamp}.".encode() + body
    mac = hmac.new(secret.encode(), msg, hashlib.sha256).digest()
    return "v1," + base64.b64encode(mac).decode()


def verify(secret: str, headers: dict[str, str], body: bytes, max_age_s: float = 300.0,
           now: float | None = None) -> bool:
    """What a receiver does: the signature matches and the timestamp is recent."""
    h = {k.lower(): v for k, v in headers.items()}
    try:
        ts = int(h[TIMESTAMP_HEADER.lower()])
        did, got = h[DELIVERY_HEADER.lower()], h[SIGNATURE_HEADER.lower()]
    except (KeyError, ValueError):
        return False
    if abs((now if now is not None else time.time()) - ts) > max_age_s:
        return False
    return hmac.compare_digest(sign(secret, did, ts, body), got)


def forbidden_destination(url: str) -> str:
    """Why the server must not POST to `url` ("" if it may): never to a link-local,
    multicast or unspecified address, where cloud metadata services answer
    (169.254.169.254, fe80::/10, fd00:ec2::254), nor to an IPv6 form of one such as
    `::ffff:169.254.169.254` (metricflow._netguard); loopback and private networks are
    allowed (webhooks are created by admins; docs/alerts.md)."""
    try:  # the host as the POST's own library reads it (other parsers disagree on
        # backslashes and %-escapes: the host checked must be the host connected to)
        parsed = urllib3.util.parse_url(url)
    except ValueError as e:
        return f"refused: the URL does not parse ({e})"
    if parsed.auth:  # (refused when a webhook is created, too)
        return "refused: the webhook URL carries credentials; sign with a secret"
    host = (parsed.host or "").strip("[]")
    why = refused_without_dns(host)
    if why:
        return f"refused: {host} {why}"
    try:
        ips = resolved_addresses(host)
    except OSError:
        return ""  # the POST reports the resolution error
    for ip in ips:
        why = never_reach(ip)
        if why:
            return f"refused: {host} resolves to {ip}, {why}"
    return ""


def slack_text(payload: dict[str, Any]) -> str:
    """One line a chat channel shows for an event."""
    d = payload.get("data", {})
    name = payload.get("event", "")
    if name.startswith("alert."):
        state = "FIRING" if name == "alert.firing" else "RESOLVED"
        head = f"[{str(d.get('severity', '')).upper()}] {state}: {d.get('title', '')}"
        return f"{head}\n{d.get('text', '')}".strip()
    keys = ("name", "version", "alias", "run_id", "run_name", "status", "to_stage")
    parts = [f"{k}={d[k]}" for k in keys if d.get(k) not in (None, "")]
    return f"{name}: " + ", ".join(parts)


def render(hook: Webhook, d: Delivery, now_s: int | None = None) -> tuple[bytes, dict[str, str]]:
    """Body and headers of one attempt of `d` to `hook`."""
    payload = json.loads(d.payload)
    payload["delivery_id"] = d.delivery_id
    if hook.payload_format == "slack":
        body_obj: Any = {"text": slack_text(payload)}
    else:
        body_obj = payload
    body = json.dumps(body_obj, sort_keys=True).encode()
    ts = int(now_s if now_s is not None else time.time())
    headers = {"Content-Type": "application/json", EVENT_HEADER: d.event,
               DELIVERY_HEADER: d.delivery_id, TIMESTAMP_HEADER: str(ts)}
    if hook.secret:
        headers[SIGNATURE_HEADER] = sign(hook.secret, d.delivery_id, ts, body)
    return body, headers


@dataclass(frozen=True)
class DispatcherConfig:
    workers: int = 8
    """Deliveries in flight at once (to different subjects)."""
    per_webhook: int = 2
    """Of those, at most this many to one webhook: a slow or hung receiver holds two
    senders, and the other webhooks' deliveries go on."""
    timeout_s: float = 5.0
    """Longest an attempt takes, from connecting to the answer's end (however slowly
    the receiver trickles it); then the attempt failed."""
    max_attempts: int = 6
    """Attempts before a delivery is dead (a dead letter)."""
    backoff_s: float = 0.5
    """First retry delay; doubles per attempt, with +-20% jitter."""
    backoff_max_s: float = 60.0
    """Longest retry delay."""
    poll_s: float = 0.5
    """Longest the sender sleeps between looks at the outbox (other processes queue too)."""
    chain: int = 4
    """Deliveries of one subject a sender sends back to back (each claimed as the one
    before it ends) before it goes back to the pool: a busy subject cannot keep a
    sender from the others."""


class Dispatcher:
    """Sends the outbox's deliveries; `notify()` wakes it when something was queued."""

    def __init__(self, store: AlertStore, config: DispatcherConfig | None = None) -> None:
        self.store = store
        self.config = config or DispatcherConfig()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._pool = ThreadPoolExecutor(self.config.workers,
                                        thread_name_prefix="metricflow-webhook")
        self._inflight = threading.Semaphore(self.config.workers)
        self._per_hook: dict[int, int] = {}  # webhook -> deliveries in flight
        self._per_lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._hooks: dict[int, tuple[float, Webhook]] = {}
        self._env: dict[str, tuple[float, dict[str, Any]]] = {}
        self._managers: dict[tuple[str | None, str | bool], urllib3.PoolManager] = {}
        self._managers_lock = threading.Lock()
        self.sent = self.failed = 0

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="metricflow-dispatch",
                                        daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(10)
        self._pool.shutdown(wait=False, cancel_futures=True)
        with self._managers_lock:
            for m in self._managers.values():
                m.clear()

    def notify(self) -> None:
        self._wake.set()

    def on_event(self, event: Event) -> None:
        """The event-bus subscriber: queue the event's deliveries (on the bus thread)
        and send those that head their subject at once."""
        claimed: list[Delivery] = []
        n = self.store.queue_event(event, str(event.data.get("experiment_id") or ""),
                                   claim=claimed)
        self.send_now(claimed)
        if n > len(claimed):  # some wait behind their subject's earlier deliveries
            self.notify()

    def send_now(self, claimed: list[Delivery]) -> None:
        """Send deliveries the caller claimed when it queued them (`AlertStore.queue`),
        skipping the outbox poll. Never blocks: with every sender busy, a delivery goes
        back to the queue (and the poller is woken for it)."""
        back = False
        for d in claimed:
            if self._take(d.webhook_id, blocking=False):
                self._pool.submit(self._send_one, d)
            else:
                back = True
                try:
                    self.store.unclaim(d)
                except Exception:  # its lease runs out; then it is sent
                    log.exception("delivery %s not given back", d.delivery_id)
        if back:
            self.notify()

    # ---------------------------------------------------------------- sending
    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.clear()  # a wake from here on is seen by the wait below
            c0 = time.thread_time()
            wait = self._claim_and_send()
            am.CPU.labels(part="dispatch").inc(time.thread_time() - c0)
            if wait:
                self._wake.wait(wait)

    def _claim_and_send(self) -> float:
        """Claim what is due, as much as there are free senders for, and hand it to
        them; return how long to wait for the next look (0: look again at once). A
        claim waits for no sender: its lease would run out meanwhile, and another
        process would send it too."""
        now = now_ms()
        claimed = []
        nxt = None
        with self._per_lock:
            free = self.config.workers - sum(self._per_hook.values())  # senders at work
        try:
            nxt = self.store.next_due_ms()  # a read: no write lock while idle
            if free > 0 and nxt is not None and nxt <= now:
                claimed = self.store.claim_due(free, self._full())
        except Exception:
            log.exception("webhook outbox unreadable; retrying")
        sent = 0
        for d in claimed:
            if self._take(d.webhook_id, blocking=False):
                self._pool.submit(self._send_one, d)
                sent += 1
            else:  # taken meanwhile (the evaluator's own sends): back to the queue
                try:
                    self.store.unclaim(d)
                except Exception:
                    log.exception("delivery %s not given back", d.delivery_id)
        if sent:
            return 0.0
        # Nothing sent: every sender is busy (the one that ends wakes us), due rows wait
        # behind a head in flight (its sender wakes us when it finishes), or the next
        # retry is in the future.
        wait = self.config.poll_s
        if claimed:
            wait = 0.05
        elif free > 0 and nxt is not None and nxt > now:
            wait = max(0.005, min(wait, (nxt - now) / 1000))
        return wait

    def _hook(self, webhook_id: int) -> Webhook | None:
        """The webhook (kept 2 s), or None when it was deleted. Other errors raise."""
        hit = self._hooks.get(webhook_id)
        if hit is not None and time.monotonic() - hit[0] < 2.0:
            return hit[1]
        try:
            hook = self.store.get_webhook(webhook_id)
        except NotFound:
            return None
        self._hooks[webhook_id] = (time.monotonic(), hook)
        return hook

    def _manager(self, proxy: str | None, verify: str | bool) -> urllib3.PoolManager:
        """The connection pools for one proxy (or none) and CA bundle, kept open across
        deliveries (thread-safe; one per combination the environment names)."""
        key = (proxy, verify)
        with self._managers_lock:
            m = self._managers.get(key)
            if m is None:
                kw: dict[str, Any] = {"num_pools": 64, "maxsize": self.config.workers,
                                      "cert_reqs": "CERT_REQUIRED"}
                if isinstance(verify, str) and os.path.isdir(verify):
                    kw["ca_cert_dir"] = verify  # a directory of hashed certificates
                else:
                    kw["ca_certs"] = (verify if isinstance(verify, str)
                                      else requests.utils.DEFAULT_CA_BUNDLE_PATH)
                if proxy:
                    user, password = requests.utils.get_auth_from_url(proxy)
                    auth = urllib3.util.make_headers(
                        proxy_basic_auth=f"{user}:{password}") if user else {}
                    m = urllib3.ProxyManager(proxy, proxy_headers=auth, **kw)
                else:
                    m = urllib3.PoolManager(**kw)
                self._managers[key] = note_connections(m)
            return m

    def _environment(self, url: str) -> dict[str, Any]:
        """What requests would take from the environment for `url` (HTTP(S)_PROXY and
        NO_PROXY, REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE, ~/.netrc), looked up at most every
        `ENV_TTL_S` per URL: reading ~/.netrc and the proxy variables on every POST was a
        tenth of a delivery's CPU."""
        hit = self._env.get(url)
        now = time.monotonic()
        if hit is not None and now - hit[0] < ENV_TTL_S:
            return hit[1]
        env = {"proxies": requests.utils.get_environ_proxies(url),
               "verify": (os.environ.get("REQUESTS_CA_BUNDLE")
                          or os.environ.get("CURL_CA_BUNDLE") or True),
               "auth": requests.utils.get_netrc_auth(url)}
        self._env[url] = (now, env)
        return env

    def _send_one(self, d: Delivery) -> None:
        """Send `d`, then up to `chain` - 1 deliveries of its subject that are due behind
        it, one after another on this sender (each claimed as the one before it ends:
        in order, no poll)."""
        more = True  # the outbox has more to send (unknown: yes)
        nxt: Delivery | None = d
        cur = d
        try:
            for n in range(1, max(1, self.config.chain) + 1):
                if nxt is None or self._stop.is_set():
                    break
                cur, nxt = nxt, None
                take = n < self.config.chain and not self._stop.is_set()
                more, nxt = self._attempt(cur, take)
        except Exception:
            log.exception("delivery %s failed unexpectedly", cur.delivery_id)
        finally:
            if nxt is not None:  # claimed as the dispatcher stopped: back to the queue
                more = True
                try:
                    self.store.unclaim(nxt)
                except Exception:  # its lease runs out; then it is sent
                    log.exception("delivery %s not given back", nxt.delivery_id)
            with self._per_lock:
                left = self._per_hook.get(d.webhook_id, 1) - 1
                if left > 0:
                    self._per_hook[d.webhook_id] = left
                else:
                    self._per_hook.pop(d.webhook_id, None)
            self._inflight.release()
            if more:  # another subject's delivery may be due now, or one held back
                self._wake.set()

    def _attempt(self, d: Delivery, take_next: bool) -> tuple[bool, Delivery | None]:
        """One attempt at `d`, recorded; returns what `finish_and_take_next` does."""
        c0, t0 = time.thread_time(), time.monotonic()
        try:
            try:
                hook = self._hook(d.webhook_id)
            except Exception as e:  # the control plane, not the receiver: try again later
                log.exception("webhook %s unreadable", d.webhook_id)
                return self.store.finish_and_take_next(
                    d, False, None, f"webhook unreadable: {type(e).__name__}",
                    self._retry_at(d), take_next=False)
            if hook is None:
                return self.store.finish_and_take_next(d, False, None, "webhook deleted",
                                                       None, take_next)
            code, err = self.post(hook, d)
            am.STAGE.labels(stage="deliver").observe(time.monotonic() - t0)
            ok = code is not None and 200 <= code < 300
            am.DELIVERIES.labels(result="delivered" if ok else "failed").inc()
            if ok:
                self.sent += 1
                return self.store.finish_and_take_next(d, True, code, None, None, take_next)
            self.failed += 1
            return self.store.finish_and_take_next(d, False, code, err, self._retry_at(d),
                                                   take_next)
        finally:
            am.CPU.labels(part="dispatch").inc(time.thread_time() - c0)

    def _retry_at(self, d: Delivery) -> int | None:
        """When a failed attempt at `d` is tried again (None: it was the last)."""
        attempt = d.attempts + 1
        if attempt >= self.config.max_attempts:
            return None
        delay = min(self.config.backoff_s * 2 ** (attempt - 1), self.config.backoff_max_s)
        return now_ms() + int(delay * random.uniform(0.8, 1.2) * 1000)

    def _full(self) -> list[int]:
        """Webhooks with `per_webhook` deliveries in flight (not claimed for now)."""
        with self._per_lock:
            return [w for w, n in self._per_hook.items() if n >= self.config.per_webhook]

    def _take(self, webhook_id: int, blocking: bool) -> bool:
        """A sender for a delivery to `webhook_id` (counted per webhook): False when the
        webhook has its `per_webhook` share, or (not blocking) no sender is free."""
        with self._per_lock:
            if self._per_hook.get(webhook_id, 0) >= self.config.per_webhook:
                return False
        if not self._inflight.acquire(blocking=blocking):
            return False
        with self._per_lock:
            self._per_hook[webhook_id] = self._per_hook.get(webhook_id, 0) + 1
        return True

    def post(self, hook: Webhook, d: Delivery) -> tuple[int | None, str | None]:
        """One attempt: (status code or None, error text or None). urllib3 directly:
        through requests a POST took twice the CPU (its sessions, hooks and cookies)."""
        why = forbidden_destination(hook.url)
        if why:
            return None, why
        body, headers = render(hook, d)
        headers["User-Agent"] = USER_AGENT
        env = self._environment(hook.url)
        if env["auth"]:  # ~/.netrc names this host
            user, password = env["auth"]
            headers.update(urllib3.util.make_headers(basic_auth=f"{user}:{password}"))
        proxy = requests.utils.select_proxy(hook.url, env["proxies"])
        if proxy:  # "host:3128" as requests takes it
            proxy = requests.utils.prepend_scheme_if_needed(proxy, "http")
        t = self.config.timeout_s
        with _WATCHDOG.within(t) as attempt:
            try:
                r = self._manager(proxy, env["verify"]).urlopen(
                    "POST", hook.url, body=body, headers=headers, redirect=False,
                    retries=False, timeout=urllib3.Timeout(connect=t, read=t),
                    preload_content=False)
            except (urllib3.exceptions.HTTPError, ValueError, OSError) as e:
                return None, _cut_text(t) if attempt.cut else f"{type(e).__name__}: {e}"[:500]
            try:
                text = r.read(ERROR_TEXT_BYTES)
                if r.read(1):  # a longer answer: not read to its end, the connection closes
                    r.close()
            except (urllib3.exceptions.HTTPError, OSError) as e:
                # (cut or not, the status stands: a 2xx delivered, its body only explains)
                r.close()
                text = f"{type(e).__name__}: {e}".encode()
            finally:
                r.release_conn()  # (no longer this attempt's: the pool tells it, _cutoff.py)
            if attempt.cut:  # (a body without a length ends at the cut as if complete)
                text = _cut_text(t).encode()
        ok = 200 <= r.status < 300
        return r.status, None if ok else text.decode("utf-8", "replace")[:500]

    def test(self, hook: Webhook) -> dict[str, Any]:
        """Send a `webhook.test` payload now (not queued, not retried) and report."""
        ev = Event("webhook.test", f"webhook:{hook.webhook_id}",
                   {"webhook_id": str(hook.webhook_id), "name": hook.name})
        d = Delivery(0, ev.event_id, hook.webhook_id, ev.event_id, ev.name, ev.subject,
                     json.dumps({"event": ev.name, "event_id": ev.event_id,
                                 "subject": ev.subject, "actor": "",
                                 "timestamp_ms": ev.timestamp_ms, "data": dict(ev.data)}),
                     "pending", 0, 0, None, None, now_ms(), None)
        code, err = self.post(hook, d)
        return {"status_code": code, "error": err,
                "delivered": code is not None and 200 <= code < 300}


_WATCHDOG = Watchdog()
"""Every dispatcher's attempts' deadlines: one thread per process, started on first use."""


def _cut_text(timeout_s: float) -> str:
    """The error of an attempt its deadline cut."""
    return f"no complete answer within {timeout_s:g} s (timeout_s)"
