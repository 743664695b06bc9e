// Placeholder created by C1 (shell); the page's owner fills it (see UI_CONTRACT.md).
import type { Route } from "../../lib/url";

export function SigninPage(props: { route: Route }) {
  return <div class="placeholder">SigninPage: coming soon ({props.route.path})</div>;
}
