import type { Route } from "../../lib/url";

export function RunsPage(props: { route: Route; experimentIds: string[] }) {
  return <div class="placeholder">Runs of {props.experimentIds.join(", ")}</div>;
}
