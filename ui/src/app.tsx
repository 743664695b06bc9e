// App shell: top navigation and the hash router. Every page is in the one bundle: split
// per page, a cold navigation waited for the entry script, then the page's chunks (one
// more round of requests, and a render of "Loading…" in between), ~100-200 ms here,
// to save ~30 KB gzipped for the pages not shown.
import { useRoute, Route } from "./lib/url";
import { ComparePage } from "./pages/compare/index";
import { ExperimentsPage } from "./pages/experiments/index";
import { ModelsPage } from "./pages/models/index";
import { RunPage } from "./pages/run/index";
import { RunsPage } from "./pages/runs/index";
import { SigninPage } from "./pages/signin/index";

export interface PageProps {
  route: Route;
}

function pick(route: Route) {
  const p = route.parts;
  if (p.length === 0) return <ExperimentsPage route={route} />;
  switch (p[0]) {
    case "experiments":
      if (p.length === 1) return <ExperimentsPage route={route} />;
      if (p.length === 2) return <RunsPage route={route} experimentIds={[p[1]]} />;
      if (p.length >= 4 && p[2] === "runs") return <RunPage route={route} experimentId={p[1]} runId={p[3]} />;
      break;
    case "runs":
      return <RunsPage route={route} experimentIds={(route.params.get("e") || "").split(",").filter(Boolean)} />;
    case "compare":
      return <ComparePage route={route} />;
    case "models":
      return <ModelsPage route={route} name={p[1]} />;
    case "signin":
      return <SigninPage route={route} />;
  }
  return <div class="error">No page at {route.path}. <a href="#/">Experiments</a></div>;
}

export function App() {
  const route = useRoute();
  const section = route.parts[0] || "experiments";
  return (
    <div class="shell">
      <header class="topbar">
        <a class="brand" href="#/">metricflow</a>
        <nav>
          <a href="#/" class={section === "experiments" || section === "runs" ? "active" : ""}>Experiments</a>
          <a href="#/compare" class={section === "compare" ? "active" : ""}>Compare</a>
          <a href="#/models" class={section === "models" ? "active" : ""}>Models</a>
        </nav>
        <span class="spacer" />
        <a href="#/signin" class={section === "signin" ? "active" : ""}>Account</a>
      </header>
      <main class="page">{pick(route)}</main>
    </div>
  );
}
