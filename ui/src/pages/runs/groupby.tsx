// Group the filtered runs by a param: run count and min/mean/max of a metric per
// param value (POST /api/v1/runs/group-by-param, computed in ClickHouse).
import { useEffect, useState } from "preact/hooks";
import { post } from "../../lib/api";
import { ErrorView } from "../../lib/errors";
import { fmtCount, fmtNum } from "../../lib/format";
import { quoteKey } from "./filter";

interface Group {
  param_value: string;
  run_count: number;
  finite_count: number;
  mean: number | string;
  std: number | string;
  min: number | string;
  max: number | string;
}

interface Props {
  experimentIds: string[];
  filter: string;
  param: string;
  metric: string;
  onPick: (filter: string) => void;
}

export function GroupTable({ experimentIds, filter, param, metric, onPick }: Props) {
  const [groups, setGroups] = useState<Group[] | null>(null);
  const [error, setError] = useState<unknown>(null);
  useEffect(() => {
    if (!param || !metric) return;
    const ctrl = new AbortController();
    setGroups(null);
    setError(null);
    post<{ groups: Group[] }>("/api/v1/runs/group-by-param",
      { experiment_ids: experimentIds, filter, param_key: param, metric_key: metric }, ctrl.signal).then(
      (r) => setGroups(r.groups),
      (e) => e.name !== "AbortError" && setError(e),
    );
    return () => ctrl.abort();
  }, [experimentIds.join(","), filter, param, metric]);

  if (!param || !metric) return <div class="muted">Choose a param to group by and a metric to summarize.</div>;
  if (error) return <ErrorView error={error} />;
  if (!groups) return <div class="loading">Grouping…</div>;
  const pick = (v: string) => {
    const cond = `params.${quoteKey(param)} = '${v.replace(/'/g, "''")}'`;
    onPick(filter ? `(${filter}) AND ${cond}` : cond);
  };
  return (
    <div class="groups">
      <table class="plain" data-testid="group-table">
        <thead>
          <tr>
            <th>params.{param}</th>
            <th class="num">runs</th>
            <th class="num">with {metric}</th>
            <th class="num">min</th>
            <th class="num">mean</th>
            <th class="num">max</th>
          </tr>
        </thead>
        <tbody>
          {groups.map((g) => (
            <tr data-testid="group-row">
              <td>
                <button class="linklike" onClick={() => pick(g.param_value)} title="Show these runs">
                  {g.param_value === "" ? <span class="muted">(empty)</span> : g.param_value}
                </button>
              </td>
              <td class="num">{fmtCount(g.run_count)}</td>
              <td class="num">{fmtCount(g.finite_count)}</td>
              <td class="num">{fmtNum(g.min)}</td>
              <td class="num">{fmtNum(g.mean)}</td>
              <td class="num">{fmtNum(g.max)}</td>
            </tr>
          ))}
        </tbody>
      </table>
      {groups.length === 0 && <div class="muted">No run has params.{param}.</div>}
    </div>
  );
}
