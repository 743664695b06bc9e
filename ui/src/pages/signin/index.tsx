// Sign-in (C2). With auth on, a token or a user name and password is posted once to
// /ui-api/v1/session; the server answers with an HttpOnly session cookie (the page never
// sees it) and a readable CSRF cookie that api.ts echoes on state-changing requests.
// Credentials travel only in the POST body, never in the URL.
import { useEffect, useState } from "preact/hooks";
import "./signin.css";
import { ApiError, request } from "../../lib/api";
import { navigate, type Route } from "../../lib/url";

interface Session {
  auth_enabled: boolean;
  user: string | null;
  is_admin: boolean;
  expires_at_ms: number | null;
}

const SESSION = "/ui-api/v1/session";

/** Where to go after signing in: the `next` hash path, only if it is an in-app route. */
function nextHash(route: Route): string {
  const next = route.params.get("next") || "/";
  return next.startsWith("/") && !next.startsWith("//") && !next.startsWith("/signin") ? "#" + next : "#/";
}

export function SigninPage(props: { route: Route }) {
  const [session, setSession] = useState<Session | null>(null);
  const [mode, setMode] = useState<"password" | "token">("password");
  const [username, setUsername] = useState("");
  const [password, setPassword] = useState("");
  const [token, setToken] = useState("");
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  useEffect(() => {
    request<Session>(SESSION, { noRedirect: true })
      .then(setSession)
      .catch((e) => setError(e instanceof Error ? e.message : String(e)));
  }, []);

  async function submit(ev: Event) {
    ev.preventDefault();
    setBusy(true);
    setError(null);
    const body = mode === "token" ? { token: token.trim() } : { username, password };
    try {
      const s = await request<Session>(SESSION, { method: "POST", body, noRedirect: true });
      setPassword("");
      setToken("");
      setSession(s);
      navigate(nextHash(props.route));
    } catch (e) {
      if (e instanceof ApiError && e.status === 401) setError("Sign-in failed: " + e.message);
      else if (e instanceof ApiError && e.status === 429) setError("Too many attempts: " + e.message);
      else setError(e instanceof Error ? e.message : String(e));
    } finally {
      setBusy(false);
    }
  }

  async function signOut() {
    setBusy(true);
    try {
      setSession(await request<Session>(SESSION, { method: "DELETE", noRedirect: true }));
    } catch (e) {
      setError(e instanceof Error ? e.message : String(e));
    } finally {
      setBusy(false);
    }
  }

  if (session === null && error === null) return <div class="loading">Loading…</div>;
  if (session && !session.auth_enabled) {
    return (
      <div class="signin" data-testid="signin-off">
        <h1>No sign-in needed</h1>
        <p class="muted">Authentication is off on this server: every page is open.</p>
        <a href="#/">Experiments</a>
      </div>
    );
  }
  if (session && session.user) {
    return (
      <div class="signin" data-testid="signed-in">
        <h1>Signed in</h1>
        <p>
          You are <strong data-testid="signed-in-user">{session.user}</strong>
          {session.is_admin ? " (admin)" : ""}.
          {session.expires_at_ms ? " The session ends " + new Date(session.expires_at_ms).toLocaleString() + "." : ""}
        </p>
        <div class="toolbar">
          <a href={nextHash(props.route)}>Continue</a>
          <button type="button" data-testid="signout" onClick={signOut} disabled={busy}>Sign out</button>
        </div>
        {error && <div class="error" role="alert">{error}</div>}
      </div>
    );
  }
  return (
    <form class="signin" data-testid="signin-form" onSubmit={submit} autocomplete="on">
      <h1>Sign in to metricflow</h1>
      <div class="toolbar" role="tablist">
        <button type="button" class={mode === "password" ? "primary" : ""} data-testid="signin-mode-password"
          onClick={() => setMode("password")}>User and password</button>
        <button type="button" class={mode === "token" ? "primary" : ""} data-testid="signin-mode-token"
          onClick={() => setMode("token")}>API token</button>
      </div>
      {mode === "password" ? (
        <>
          <label>User name
            <input name="username" autocomplete="username" data-testid="signin-username" value={username}
              onInput={(e) => setUsername((e.target as HTMLInputElement).value)} required />
          </label>
          <label>Password
            <input name="password" type="password" autocomplete="current-password" data-testid="signin-password"
              value={password} onInput={(e) => setPassword((e.target as HTMLInputElement).value)} required />
          </label>
        </>
      ) : (
        <label>API token (mft_…)
          <input name="token" type="password" autocomplete="off" data-testid="signin-token" value={token}
            onInput={(e) => setToken((e.target as HTMLInputElement).value)} required />
        </label>
      )}
      <div class="toolbar">
        <button type="submit" class="primary" data-testid="signin-submit" disabled={busy}>Sign in</button>
      </div>
      {error && <div class="error" role="alert" data-testid="signin-error">{error}</div>}
      <p class="muted">The session lasts at most 12 hours and ends when you sign out. Your password or token is
        sent once and kept by the server only as a session cookie your browser cannot read from scripts.</p>
    </form>
  );
}
