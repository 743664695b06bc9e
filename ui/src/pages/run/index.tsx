// Placeholder created by C1 (shell); the page's owner fills it (see UI_CONTRACT.md).
import type { Route } from "../../lib/url";

export function RunPage(props: { route: Route; experimentId: string; runId: string }) {
  return <div class="placeholder">RunPage: coming soon ({props.route.path})</div>;
}
