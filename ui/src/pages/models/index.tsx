// Placeholder created by C1 (shell); the page's owner fills it (see UI_CONTRACT.md).
import type { Route } from "../../lib/url";

export function ModelsPage(props: { route: Route; name?: string }) {
  return <div class="placeholder">ModelsPage: coming soon ({props.route.path})</div>;
}
