"""API token format and password hashing.

Tokens are `mft_<id>_<secret>`: a 16-hex-char public id used for the lookup and
a 256-bit random secret. Only SHA-256 of the secret is stored. A fast hash is
right here because the secret is random and long (nothing to brute-force);
passwords are human-chosen, so they get argon2id, a slow memory-hard KDF
(argon2-cffi, loaded lazily so clients never need it).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from typing import Any

from metricflow.errors import InvalidArgument, Unauthenticated

PREFIX = "mft_"
_ID_HEX = 16
_hasher: Any = None
# Verified against when the user does not exist, so timing does not reveal user names.
_DUMMY_HASH: str | None = None


def new_token() -> tuple[str, str, str]:
    """A fresh token: (token_id, plaintext to hand to the user once, sha256 of the secret)."""
    token_id = secrets.token_hex(_ID_HEX // 2)
    secret = secrets.token_urlsafe(32)
    return token_id, f"{PREFIX}{token_id}_{secret}", secret_digest(secret)


def secret_digest(secret: str) -> str:
    """Hex SHA-256 of a token secret."""
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).hexdigest()


def split_token(token: str) -> tuple[str, str]:
    """`mft_<id>_<secret>` -> (id, secret); Unauthenticated if it has another shape."""
    if not token.startswith(PREFIX) or len(token) > 200:
        raise Unauthenticated("malformed API token")
    token_id, sep, secret = token[len(PREFIX):].partition("_")
    if not sep or len(token_id) != _ID_HEX or not secret:
        raise Unauthenticated("malformed API token")
    return token_id, secret


def digest_matches(secret: str, stored_hex: str) -> bool:
    """Constant-time comparison of a presented secret with the stored digest."""
    return hmac.compare_digest(secret_digest(secret), stored_hex)


def _password_hasher() -> Any:
    global _hasher
    if _hasher is None:
        try:
            from argon2 import PasswordHasher  # optional dependency
        except ImportError as e:  # pragma: no cover - depends on the install
            raise InvalidArgument("passwords need argon2-cffi (pip install argon2-cffi)",
                                  field="password") from e
        _hasher = PasswordHasher()  # argon2id with the library's maintained defaults
    return _hasher


def hash_password(password: str) -> str:
    """argon2id PHC string of `password` (at least 8 characters)."""
    if not isinstance(password, str) or len(password) < 8 or len(password) > 1024:
        raise InvalidArgument("password must be 8 to 1024 characters long", field="password")
    return str(_password_hasher().hash(password))


def verify_password(stored: str | None, password: str) -> bool:
    """Whether `password` matches the stored hash; burns the same time when there is none."""
    global _DUMMY_HASH
    ph = _password_hasher()
    real = stored is not None
    if stored is None:
        if _DUMMY_HASH is None:
            _DUMMY_HASH = ph.hash(secrets.token_urlsafe(16))
        stored = _DUMMY_HASH
    try:
        return bool(ph.verify(stored, password)) and real
    except Exception:  # VerifyMismatchError, InvalidHashError, ...
        return False
