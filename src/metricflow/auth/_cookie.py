"""The web UI's session cookie as an HTTP credential, with its CSRF check.

A browser signed in to the UI holds two cookies: `mf_session` (HttpOnly, the
plaintext of a short-lived API token minted at sign-in) and `mf_csrf` (readable
by the page's script, derived from the session). A request without an
`authorization` header but with the session cookie authenticates as that token;
if it is not a safe method, it must also carry the `X-CSRF-Token` header equal
to the `mf_csrf` cookie (double submit), which a cross-site page can neither
read nor forge. Requests with an `authorization` header (API clients) are never
looked at here: their credential is not ambient, so CSRF does not apply.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping

from metricflow.errors import PermissionDenied

SESSION_COOKIE = "mf_session"
CSRF_COOKIE = "mf_csrf"
CSRF_HEADER = "x-csrf-token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
SESSION_TOKEN_NAME = "ui-session"
"""Name of the API token a UI sign-in mints (ui/_session.py); such a token may not
create other tokens (auth/_admin_api.py): a session's reach ends with the session."""


def csrf_of(session: str) -> str:
    """The CSRF value bound to a session (a keyed hash: it reveals nothing of the token)."""
    return hmac.new(session.encode("utf-8", "surrogatepass"), b"metricflow-ui-csrf",
                    hashlib.sha256).hexdigest()


def check_csrf(method: str, headers: Mapping[str, str], cookies: Mapping[str, str]) -> None:
    """PermissionDenied unless a state-changing cookie request carries the CSRF header."""
    session = cookies.get(SESSION_COOKIE, "")
    if method.upper() in SAFE_METHODS or not session:
        return
    sent = headers.get(CSRF_HEADER, "")
    expected = csrf_of(session)
    if not (sent and hmac.compare_digest(sent.encode(), expected.encode())
            and hmac.compare_digest(cookies.get(CSRF_COOKIE, "").encode(), expected.encode())):
        raise PermissionDenied(
            f"CSRF check failed: a {method.upper()} request authenticated by the "
            f"{SESSION_COOKIE} cookie must send the header X-CSRF-Token equal to the "
            f"{CSRF_COOKIE} cookie (" + ("header missing" if not sent else "mismatch") + ")")


def cookie_authorization(method: str, headers: Mapping[str, str],
                         cookies: Mapping[str, str]) -> str | None:
    """`Bearer <session token>` for a request with the session cookie and no
    `authorization` header (CSRF checked); None when there is no session cookie."""
    session = cookies.get(SESSION_COOKIE, "")
    if not session or headers.get("authorization"):
        return None
    check_csrf(method, headers, cookies)
    return "Bearer " + session
