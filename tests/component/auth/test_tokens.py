"""Tokens: hashed at rest, scoped, expiring, revocable; passwords with argon2id."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
import sqlalchemy as sa

from metricflow.auth._authn import Authenticator, RateLimiter
from metricflow.auth._types import AuthConfig
from metricflow.errors import InvalidArgument, ResourceExhausted, Unauthenticated


def test_only_a_hash_is_stored(auth, md, tmp_path: Path) -> None:
    auth.create_user("ann")
    info, plaintext = auth.create_token("ann", name="ci")
    # The id is hex; the secret (urlsafe base64) may itself contain "_".
    secret = plaintext.split("_", 2)[2]
    assert len(secret) >= 40
    with md.engine.connect() as conn:
        dump = "\n".join(str(tuple(r)) for t in ("auth_tokens", "audit_log")
                         for r in conn.execute(sa.text(f"SELECT * FROM {t}")))
    assert info.token_id in dump and secret not in dump and plaintext not in dump
    md.engine.dispose()
    raw = b"".join(p.read_bytes() for p in tmp_path.glob("meta.db*"))
    assert secret.encode() not in raw


def _frozen_clock(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Token expiry reads now_ms(); a test clock makes 'expired' independent of load."""
    clock = [1_700_000_000_000]
    monkeypatch.setattr("metricflow.auth._store.now_ms", lambda: clock[0])
    monkeypatch.setattr("metricflow.auth._authn.now_ms", lambda: clock[0])
    return clock


def test_verify_expire_revoke(auth, monkeypatch: pytest.MonkeyPatch) -> None:
    clock = _frozen_clock(monkeypatch)
    auth.create_user("ann", is_admin=True)
    _, tok = auth.create_token("ann")
    p, exp = auth.verify_token(tok)
    assert p.user == "ann" and p.admin and exp is None
    _, short = auth.create_token("ann", ttl_s=0.3, scopes=("read",))
    assert auth.verify_token(short)[0].scopes == ("read",)
    clock[0] += 400
    with pytest.raises(Unauthenticated, match="expired"):
        auth.verify_token(short)
    info, tok2 = auth.create_token("ann")
    auth.revoke_token(info.token_id)
    with pytest.raises(Unauthenticated, match="revoked"):
        auth.verify_token(tok2)
    for bad in ("", "mft_", tok[:-1], tok + "x", "mft_" + "0" * 16 + "_x", "x" * 500):
        with pytest.raises(Unauthenticated):
            auth.verify_token(bad)


def test_cached_tokens_still_expire_and_revoke_at_once(
        auth, monkeypatch: pytest.MonkeyPatch) -> None:
    clock = _frozen_clock(monkeypatch)
    auth.create_user("ann")
    authn = Authenticator(auth, AuthConfig(enabled=True, token_cache_s=60))
    _, short = auth.create_token("ann", ttl_s=0.3)
    assert authn.authenticate(f"Bearer {short}").user == "ann"  # now cached for 60 s
    clock[0] += 400
    with pytest.raises(Unauthenticated):
        authn.authenticate(f"Bearer {short}")
    info, tok = auth.create_token("ann")
    authn.authenticate(f"Bearer {tok}")
    auth.revoke_token(info.token_id)
    authn.forget_token(info.token_id)
    with pytest.raises(Unauthenticated):
        authn.authenticate(f"Bearer {tok}")


def test_passwords_use_argon2id(auth, md) -> None:
    import base64

    auth.create_user("bo", password="correct horse")
    with md.engine.connect() as conn:
        h = conn.execute(sa.text("SELECT password_hash FROM auth_users")).scalar()
    assert h.startswith("$argon2id$") and "correct" not in h
    authn = Authenticator(auth, AuthConfig(enabled=True))
    basic = base64.b64encode(b"bo:correct horse").decode()
    assert authn.authenticate(f"Basic {basic}").user == "bo"
    for creds in (b"bo:wrong", b"nobody:correct horse", b"bo"):
        with pytest.raises(Unauthenticated):
            authn.authenticate(f"Basic {base64.b64encode(creds).decode()}")
    with pytest.raises(InvalidArgument):
        auth.create_user("short", password="1234")


def test_scopes_and_names_are_validated(auth) -> None:
    auth.create_user("ann")
    for scopes in ((), ("root",), ("read", "sudo")):
        with pytest.raises(InvalidArgument):
            auth.create_token("ann", scopes=scopes)
    for name in ("", "a b", "x\x00", "é" * 3, "a" * 257, "../x"):
        with pytest.raises(InvalidArgument):
            auth.create_user(name)
    # A non-admin user's default token has no admin scope.
    assert "admin" not in auth.create_token("ann")[0].scopes


def test_rate_limiter_gives_a_retry_hint() -> None:
    rl = RateLimiter(5.0)
    for _ in range(10):
        rl.take("t")
    with pytest.raises(ResourceExhausted) as ei:
        rl.take("t")
    assert 0 < ei.value.retry_after_s <= 0.2 + 1e-9
    rl.take("other")  # per token


def test_failures_are_audited_and_coalesced(auth, md) -> None:
    authn = Authenticator(auth, AuthConfig(enabled=True))
    for _ in range(5):
        with pytest.raises(Unauthenticated):
            authn.authenticate("Bearer nope", peer="ipv4:10.0.0.9:5555", where="X")
    entries, _ = md.search_audit_log(action="auth_failure")
    assert len(entries) == 1 and entries[0].entity_id == "ipv4:10.0.0.9"


def _basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def test_failed_passwords_are_limited_per_address_before_argon2_runs(auth) -> None:
    from metricflow.auth._authn import Authenticator
    from metricflow.errors import ResourceExhausted, Unauthenticated

    auth.create_user("bo", password="correct horse")
    authn = Authenticator(auth, AuthConfig(enabled=True, password_failures_per_s=0.001,
                                           password_failure_burst=3))
    calls = []
    real = auth.verify_password
    auth.verify_password = lambda u, p: (calls.append(u), real(u, p))[1]
    for _ in range(3):
        with pytest.raises(Unauthenticated):
            authn.authenticate(_basic("nobody", "wrong"), peer="10.0.0.9")
    assert len(calls) == 3
    for creds in (_basic("nobody", "wrong"), _basic("bo", "correct horse")):
        with pytest.raises(ResourceExhausted) as ei:
            authn.authenticate(creds, peer="10.0.0.9")
        assert ei.value.details["field"] == "rate_limit"
    assert len(calls) == 3  # refused before any argon2 verification
    # another address, and tokens from the limited one, are unaffected
    assert authn.authenticate(_basic("bo", "correct horse"), peer="10.0.0.10").user == "bo"
    _, token = auth.create_token("bo")
    assert authn.authenticate(f"Bearer {token}", peer="10.0.0.9").user == "bo"


def test_password_checks_run_a_bounded_number_at_once(auth) -> None:
    import threading

    from metricflow.auth._authn import Authenticator
    from metricflow.errors import ResourceExhausted

    auth.create_user("bo", password="correct horse")
    authn = Authenticator(auth, AuthConfig(enabled=True, max_password_checks=1))
    entered, release = threading.Event(), threading.Event()
    real = auth.verify_password

    def slow(u: str, p: str):
        entered.set()
        assert release.wait(60)
        return real(u, p)

    auth.verify_password = slow
    out = []
    t = threading.Thread(target=lambda: out.append(
        authn.authenticate(_basic("bo", "correct horse"), peer="10.0.0.1")), daemon=True)
    t.start()
    try:
        assert entered.wait(60)
        with pytest.raises(ResourceExhausted) as ei:
            authn.authenticate(_basic("bo", "correct horse"), peer="10.0.0.2")
        assert ei.value.details["field"] == "max_password_checks"
    finally:
        release.set()
        t.join(60)
    assert out and out[0].user == "bo"
    auth.verify_password = real
    assert authn.authenticate(_basic("bo", "correct horse"), peer="10.0.0.2").user == "bo"
