import type { Route } from "../../lib/url";

export function ExperimentsPage(props: { route: Route }) {
  return <div class="placeholder">Experiments ({props.route.path})</div>;
}
