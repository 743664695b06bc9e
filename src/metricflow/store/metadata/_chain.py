"""The audit log's hash chain: the one writer of audit entries, and its verifier.

Every control-plane change appends one `audit_log` row through `append_audit`,
inside the change's own transaction. Each row holds `prev_hash` (the hash of the
row before it) and `entry_hash`:

    entry_hash = sha256_hex(prev_hash + canonical(row))
    canonical(row) = compact JSON of [ts, actor, action, entity_type, entity_id,
                     before_json, after_json, comment, model_id, model_name, version]

The first row's `prev_hash` is 64 zeros. Appends are serialized so the chain is
linear under concurrency: SQLite write transactions start with BEGIN IMMEDIATE
(the database write lock is held from the start), and on PostgreSQL the writer
takes a transaction-scoped advisory lock before it reads the head, so the next
appender waits until this transaction commits or rolls back.

An edit to a row breaks its own hash, a deleted row breaks its successor's
`prev_hash`, a moved row is found at another place in the chain; `verify_chain`
reports the first of these. A rewrite of the whole chain is caught by an anchor
(`make_anchor`): the head's id and hash signed with a key the operator holds.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from metricflow.errors import InvalidArgument
from metricflow.store.metadata._tables import audit_log

GENESIS = "0" * 64
"""`prev_hash` of the first entry."""
# Arbitrary constant naming "metricflow audit chain" for pg_advisory_xact_lock.
_PG_CHAIN_LOCK = 0x6D66_6163
_A = audit_log.c
_encode = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"),
                           check_circular=False).encode


def _no_default(o: object) -> Any:
    raise TypeError(f"an audit field must be str, int or None, not {type(o).__name__}")


# The C encoder behind `_encode`, called directly: the same text (tested), without the
# Python-level set-up `JSONEncoder.encode` repeats per call (about a third of verify's
# per-entry time, measured on 200k entries). None on interpreters without it.
_c_encoder = getattr(json.encoder, "c_make_encoder", None)
_fast = (None if _c_encoder is None else _c_encoder(
    None, _no_default, json.encoder.encode_basestring, None, ":", ",", False, False, True))


def _encode_fields(fields: tuple[Any, ...] | list[Any]) -> str:
    """`_encode(fields)`, fast: the hashed text of an entry's 11 fields."""
    return "".join(_fast(fields, 0)) if _fast is not None else _encode(fields)
CHUNK = 50_000
"""Rows per keyset page when streaming the chain (bounded memory at any size)."""


def canonical(ts: int, actor: str, action: str, entity_type: str, entity_id: str,
              before_json: str | None, after_json: str | None, comment: str | None,
              model_id: int | None, model_name: str | None, version: int | None) -> str:
    """The hashed text of one entry (see the module doc)."""
    return _encode_fields((ts, actor, action, entity_type, entity_id, before_json,
                           after_json, comment, model_id, model_name, version))


def entry_hash(prev_hash: str, canon: str) -> str:
    """sha256 hex of the previous hash followed by the entry's canonical text."""
    return hashlib.sha256((prev_hash + canon).encode()).hexdigest()


def _json(value: Any) -> str | None:
    return None if value is None else json.dumps(value, sort_keys=True)


def append_audit(conn: sa.Connection, *, actor: str | None, action: str, entity_type: str,
                 entity_id: str, before: Any = None, after: Any = None, comment: str = "",
                 model_id: int | None = None, model_name: str | None = None,
                 version: int | None = None, ts: int | None = None) -> int:
    """Append one audit entry inside `conn`'s (write) transaction; returns its id.

    Every audit write in metricflow goes through here or `append_audit_many`.
    `before` and `after` are JSON-serializable snapshots; over-long short fields are
    cut to the columns' sizes (action 64, entity_type 32, entity_id 512).
    """
    return append_audit_many(conn, [dict(
        actor=actor, action=action, entity_type=entity_type, entity_id=entity_id,
        before=before, after=after, comment=comment, model_id=model_id,
        model_name=model_name, version=version, ts=ts)])[0]


def append_audit_many(conn: sa.Connection, entries: list[dict[str, Any]]) -> list[int]:
    """Append entries, in order, inside `conn`'s (write) transaction; their ids.

    Each entry takes `append_audit`'s keyword arguments. One read of the head and one
    insert for all of them: the run lifecycle's group commit (`AuditBatcher`) writes
    the entries of concurrent calls this way.
    """
    if not entries:
        return []
    if conn.dialect.name == "postgresql":
        conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_CHAIN_LOCK})
    # Ids are assigned here, one past the head, so the log has no gaps on either
    # engine (a PostgreSQL sequence would skip the ids of rolled-back appends).
    last = conn.execute(sa.select(_A.id, _A.entry_hash).order_by(_A.id.desc())
                        .limit(1)).first()
    new_id, prev = (1, GENESIS) if last is None else (int(last[0]) + 1, last[1] or GENESIS)
    rows: list[dict[str, Any]] = []
    for e in entries:
        ts = e.get("ts")
        row: dict[str, Any] = dict(
            ts=ts if ts is not None else time.time_ns() // 1_000_000,
            actor=(e.get("actor") or "unknown")[:256], action=e["action"][:64],
            entity_type=e["entity_type"][:32], entity_id=e["entity_id"][:512],
            before_json=_json(e.get("before")), after_json=_json(e.get("after")),
            comment=e.get("comment") or None, model_id=e.get("model_id"),
            model_name=e.get("model_name"), version=e.get("version"))
        h = entry_hash(prev, canonical(**row))
        rows.append(dict(id=new_id, **row, prev_hash=prev, entry_hash=h))
        new_id, prev = new_id + 1, h
    conn.execute(audit_log.insert(), rows)
    return [r["id"] for r in rows]


@dataclass(frozen=True)
class ChainProblem:
    """The first place where the chain does not hold."""

    entry_id: int
    kind: str
    """"edited", "deleted" or "reordered"."""
    message: str


@dataclass(frozen=True)
class ChainReport:
    """What `verify_chain` found."""

    entries: int
    """Entries read (up to and including the first problem)."""
    head_id: int
    head_hash: str
    problem: ChainProblem | None

    @property
    def ok(self) -> bool:
        return self.problem is None


_COLS = (_A.id, _A.ts, _A.actor, _A.action, _A.entity_type, _A.entity_id, _A.before_json,
         _A.after_json, _A.comment, _A.model_id, _A.model_name, _A.version, _A.prev_hash,
         _A.entry_hash)


_PAGE_SQL = ("SELECT id, ts, actor, action, entity_type, entity_id, before_json, after_json, "
             "comment, model_id, model_name, version, prev_hash, entry_hash FROM audit_log "
             "WHERE id > {p} AND id <= {p} ORDER BY id LIMIT {n}")


def _pages(engine: sa.Engine, start_after: int = 0, upto: int | None = None
           ) -> Iterator[list[Any]]:
    """The log in id order, CHUNK rows per query (keyset paging, one short read each).

    Read through the driver's own cursor: plain tuples, no row objects (this loop is
    most of `audit verify`'s time at a million entries).
    """
    mark = "?" if engine.dialect.paramstyle == "qmark" else "%s"
    sql = _PAGE_SQL.format(p=mark, n=int(CHUNK))
    last, end = start_after, upto if upto is not None else 2**62
    while True:
        with engine.connect() as conn:
            cur = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
            try:
                cur.execute(sql, (last, end))
                rows: list[Any] = cur.fetchall()
            finally:
                cur.close()
        if not rows:
            return
        yield rows
        last = rows[-1][0]


@dataclass(frozen=True)
class _Scan:
    """One id range, checked on its own: self-hashes, links and ids inside it."""

    n: int
    first_id: int
    first_prev: str
    last_id: int
    last_hash: str
    bad: tuple[int, str, str, int] | None
    """(entry id, "nohash" | "edited" | "link" | "gap", its prev_hash, the id before it)."""


def _scan(engine: sa.Engine, after: int, upto: int | None, prev: str | None) -> _Scan:
    """Check entries after id `after` up to `upto`; `prev` is the hash the first must
    follow (None: unknown here, the caller stitches ranges together)."""
    sha, enc = hashlib.sha256, _encode_fields
    n, first_id, first_prev, prev_id = 0, 0, "", after
    for rows in _pages(engine, start_after=after, upto=upto):
        for r in rows:  # (id, 11 hashed fields, prev_hash, entry_hash); indexing is cheapest
            rid, ph, eh = r[0], r[12], r[13]
            if n == 0:
                first_id, first_prev = rid, ph or ""
            n += 1
            if eh is None or ph is None:
                return _Scan(n, first_id, first_prev, prev_id, prev or "",
                             (rid, "nohash", ph or "", prev_id))
            if sha((ph + enc(r[1:12])).encode()).hexdigest() != eh:  # == canonical(*r[1:12])
                return _Scan(n, first_id, first_prev, prev_id, prev or "",
                             (rid, "edited", ph, prev_id))
            if prev is not None and ph != prev:
                return _Scan(n, first_id, first_prev, prev_id, prev, (rid, "link", ph, prev_id))
            if prev is not None and rid != prev_id + 1:
                return _Scan(n, first_id, first_prev, prev_id, prev, (rid, "gap", ph, prev_id))
            prev, prev_id = eh, rid
    return _Scan(n, first_id, first_prev, prev_id, prev or "", None)


def _problem(engine: sa.Engine, bad: tuple[int, str, str, int]) -> ChainProblem:
    rid, kind, ph, prev_id = bad
    if kind == "nohash":
        return ChainProblem(rid, "edited", f"entry {rid} has no hash: it was written around "
                            "the chain (an INSERT that did not go through the audit writer) or "
                            "its hash was erased")
    if kind == "edited":
        return ChainProblem(rid, "edited", f"entry {rid} was edited: its contents no longer "
                            "match its hash")
    if kind == "link":
        return _broken_link(engine, rid, ph, prev_id)
    return ChainProblem(prev_id + 1, "deleted", f"entries {prev_id + 1}..{rid - 1} are "
                        "missing (the chain was re-linked around them)")


def _scan_url(url: str, after: int, upto: int) -> _Scan:
    """A worker process's share (`verify_chain(workers=...)`)."""
    from metricflow.store.metadata._engine import create_metadata_engine

    engine = create_metadata_engine(url)
    try:
        return _scan(engine, after, upto, None)
    finally:
        engine.dispose()


PARALLEL_MIN = 200_000
"""Below this many entries one process verifies alone (starting workers costs more)."""


def verify_chain(engine: sa.Engine, *, upto: int | None = None,
                 workers: int = 1) -> ChainReport:
    """Recompute the chain from the first entry; report the first edited, deleted or
    reordered entry. `upto` stops at that id (an anchor's head).

    With `workers` > 1 and a long log, id ranges are checked in that many processes
    (each re-hashes its rows and links them) and the ranges are stitched in order, so
    the first problem reported is the same as a single pass would report.
    """
    head_id = upto
    if head_id is None:
        with engine.connect() as conn:
            head_id = conn.execute(sa.select(sa.func.max(_A.id))).scalar() or 0
    scans: list[_Scan]
    if workers > 1 and head_id >= PARALLEL_MIN:
        import multiprocessing as mp
        from concurrent.futures import ProcessPoolExecutor

        url = engine.url.render_as_string(hide_password=False)
        cuts = [head_id * k // workers for k in range(workers + 1)]
        with ProcessPoolExecutor(workers, mp_context=mp.get_context("spawn")) as pool:
            futures = [pool.submit(_scan_url, url, cuts[k], cuts[k + 1])
                       for k in range(workers)]
            scans = [f.result() for f in futures]
        # Rows beyond the head read above (appended meanwhile) are not part of this check.
    else:
        scans = [_scan(engine, 0, upto, GENESIS)]
    prev, prev_id, n = GENESIS, 0, 0
    for sc in scans:
        if sc.n == 0:
            continue
        if len(scans) > 1:  # stitch: the range's first entry must follow the last one
            if sc.first_prev != prev:
                return ChainReport(n + 1, prev_id, prev,
                                   _broken_link(engine, sc.first_id, sc.first_prev, prev_id))
            if sc.first_id != prev_id + 1:
                return ChainReport(n + 1, prev_id, prev, _problem(
                    engine, (sc.first_id, "gap", sc.first_prev, prev_id)))
        if sc.bad is not None:
            return ChainReport(n + sc.n, sc.last_id, sc.last_hash, _problem(engine, sc.bad))
        n, prev, prev_id = n + sc.n, sc.last_hash, sc.last_id
    return ChainReport(n, prev_id, prev, None)


def _broken_link(engine: sa.Engine, rid: int, wanted: str, prev_id: int) -> ChainProblem:
    """Entry `rid` does not follow `prev_id`: was its predecessor moved or removed?"""
    with engine.connect() as conn:
        found = conn.execute(sa.select(_A.id).where(_A.entry_hash == wanted)
                             .limit(1)).scalar()
    after = f"entry {prev_id}" if prev_id else "the start of the log"
    if found is not None:
        return ChainProblem(rid, "reordered", f"entry {rid} follows {after}, but it was "
                            f"written after the entry now stored as {found}: rows were "
                            "reordered")
    if rid == prev_id + 1:
        what = (f"entry {prev_id} was replaced or edited and re-hashed"
                if prev_id else f"entry {rid} was edited (its link to the start changed)")
        return ChainProblem(prev_id or rid, "edited", f"{what}: entry {rid} was written "
                            f"after an entry with hash {wanted[:16]}... that no longer exists")
    return ChainProblem(prev_id + 1, "deleted", f"entries {prev_id + 1}..{rid - 1} were "
                        f"deleted: entry {rid} follows {after}, but the entry it was written "
                        "after is gone")


def head(engine: sa.Engine) -> tuple[int, str, int]:
    """(head id, head hash, number of entries) of the log as it is now."""
    with engine.connect() as conn:
        row = conn.execute(sa.select(_A.id, _A.entry_hash).order_by(_A.id.desc())
                           .limit(1)).first()
        count = conn.execute(sa.select(sa.func.count()).select_from(audit_log)).scalar() or 0
    if row is None:
        return 0, GENESIS, 0
    return int(row[0]), row[1] or "", int(count)


def _sign(key: bytes, payload: dict[str, Any]) -> str:
    msg = _encode([payload["head_id"], payload["head_hash"], payload["entries"],
                   payload["ts"]]).encode()
    return hmac.new(key, msg, hashlib.sha256).hexdigest()


def make_anchor(engine: sa.Engine, key: bytes, *, ts: int | None = None) -> dict[str, Any]:
    """The head's id and hash, signed (HMAC-SHA256) with the operator's key.

    Kept outside the database (printed, mailed, committed elsewhere), it lets a
    later `verify_anchor` prove the chain up to that head was not rewritten.
    """
    if len(key) < 16:
        raise InvalidArgument(f"the anchor key must be at least 16 bytes; got {len(key)}",
                              field="key", limit=16, received=len(key))
    head_id, head_hash, entries = head(engine)
    payload: dict[str, Any] = {"head_id": head_id, "head_hash": head_hash,
                               "entries": entries,
                               "ts": ts if ts is not None else time.time_ns() // 1_000_000}
    payload["alg"] = "HMAC-SHA256"
    payload["signature"] = _sign(key, payload)
    return payload


class AnchorForged(InvalidArgument):
    """An anchor whose signature does not match the key: altered, or another key."""


def check_anchor_signature(anchor: dict[str, Any], key: bytes) -> None:
    """Raise AnchorForged unless `anchor` was signed with `key` (InvalidArgument if it
    lacks a field)."""
    try:
        expected = _sign(key, anchor)
    except (KeyError, TypeError) as e:
        raise InvalidArgument(f"the anchor lacks field {e}", field="anchor") from None
    if not hmac.compare_digest(expected, str(anchor.get("signature", ""))):
        raise AnchorForged("the anchor's signature does not match this key: the anchor "
                           "was altered or signed with another key", field="anchor")


def verify_anchor(engine: sa.Engine, anchor: dict[str, Any], key: bytes, *,
                  workers: int = 1) -> ChainReport:
    """Check an anchor's signature, the whole chain, and that the anchored head entry is
    still there with the anchored hash (so nothing up to it was rewritten or cut)."""
    check_anchor_signature(anchor, key)
    head_id, head_hash = int(anchor["head_id"]), str(anchor["head_hash"])
    report = verify_chain(engine, workers=workers)
    if not report.ok or head_id == 0:
        return report
    with engine.connect() as conn:
        found = conn.execute(sa.select(_A.entry_hash).where(_A.id == head_id)).first()
    if found is None:
        return ChainReport(report.entries, report.head_id, report.head_hash, ChainProblem(
            head_id, "deleted", f"the anchored head entry {head_id} (hash "
            f"{head_hash[:16]}...) is gone; the chain ends at {report.head_id}: entries "
            "were deleted and the chain re-linked"))
    if found[0] != head_hash:
        return ChainReport(report.entries, report.head_id, report.head_hash, ChainProblem(
            head_id, "edited", f"the anchored head entry {head_id} has hash {found[0][:16]}... "
            f"now, not {head_hash[:16]}...: the chain up to it was rewritten"))
    return report


def iter_entries(engine: sa.Engine, *, since_ms: int | None = None
                 ) -> Iterator[dict[str, Any]]:
    """Every entry (with its hashes) in chain order, optionally from `since_ms` on."""
    for rows in _pages(engine):
        for (rid, ts, actor, action, etype, eid, bj, aj, com, mid, mname, ver,
             ph, eh) in rows:
            if since_ms is not None and ts < since_ms:
                continue
            yield {"id": rid, "ts": ts, "actor": actor, "action": action,
                   "entity_type": etype, "entity_id": eid, "before_json": bj,
                   "after_json": aj, "comment": com, "model_id": mid, "model_name": mname,
                   "version": ver, "prev_hash": ph, "entry_hash": eh}


def seed_audit_rows(engine: sa.Engine, n: int, *, batch: int = 20_000) -> None:
    """Append `n` correctly chained synthetic entries in bulk (benchmarks and tests).

    Takes the same lock as the writer, then inserts in batches; far faster than n
    store changes, and `verify_chain` treats the rows like any other.
    """
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_CHAIN_LOCK})
        last = conn.execute(sa.select(audit_log.c.id, audit_log.c.entry_hash)
                            .order_by(audit_log.c.id.desc()).limit(1)).first()
        next_id, prev = (1, GENESIS) if last is None else (int(last[0]) + 1, last[1])
        ts0 = int(time.time() * 1000)
        done = 0
        while done < n:
            rows = []
            for i in range(done, min(n, done + batch)):
                row: dict[str, Any] = dict(
                    ts=ts0 + i, actor=f"user{i % 50}", action="set_model_version_tag",
                    entity_type="model_version", entity_id=f"m{i % 100}/{i % 7 + 1}",
                    before_json=None, after_json=f'{{"key": "k", "value": "{i}"}}',
                    comment=None, model_id=None, model_name=f"m{i % 100}", version=i % 7 + 1)
                h = entry_hash(prev, canonical(**row))
                rows.append({**row, "id": next_id + i, "prev_hash": prev, "entry_hash": h})
                prev = h
            conn.execute(audit_log.insert(), rows)
            done += len(rows)
