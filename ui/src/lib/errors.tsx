import { ApiError } from "./api";

/** One place that renders errors: 403 is a clear permission message, never a blank page. */
export function ErrorView({ error, change }: { error: unknown; change?: boolean }) {
  if (error instanceof ApiError && error.status === 403) {
    return (
      <div class="error permission" data-testid="permission-denied" role="alert">
        <strong>Permission denied.</strong> <span>{error.message}</span>
        <div class="hint">Your account may not {change ? "make this change" : "read this"}. Ask an administrator for access, or <a href="#/signin">sign in as another user</a>.</div>
      </div>
    );
  }
  if (error instanceof ApiError && error.status === 401) {
    return <div class="error" role="alert">Sign-in required. <a href="#/signin">Sign in</a></div>;
  }
  const msg = error instanceof Error ? error.message : String(error);
  const code = error instanceof ApiError ? error.code + ": " : "";
  return <div class="error" role="alert">{code}{msg}</div>;
}
