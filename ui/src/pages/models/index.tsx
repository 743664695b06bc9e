// Model registry: #/models (registered models, search in ?q=) and #/models/<name>
// (versions with stages, aliases, source runs; alias and stage changes; audit trail).
// The server decides who may change what: a refused change shows its 403 message.
import { useEffect, useState } from "preact/hooks";
import {
  AuditEntry,
  auditLog,
  deleteAlias,
  getModel,
  lookupRuns,
  ModelVersion,
  RegisteredModel,
  RunRef,
  searchModels,
  searchVersions,
  setAlias,
  sqlString,
  transitionStage,
} from "../../lib/api_runs";
import { ApiError, get } from "../../lib/api";
import { ErrorView } from "../../lib/errors";
import { Route, runLink, setParams } from "../../lib/url";
import "./models.css";

const STAGES = ["None", "Staging", "Production", "Archived"];

function fmtTime(ms: number): string {
  return ms ? new Date(ms).toLocaleString() : "–";
}

export function ModelsPage(props: { route: Route; name?: string }) {
  return props.name ? <ModelDetail name={props.name} /> : <ModelList route={props.route} />;
}

// ------------------------------------------------------------------ list

function ModelList({ route }: { route: Route }) {
  const q = route.params.get("q") || "";
  const [models, setModels] = useState<RegisteredModel[] | null>(null);
  const [next, setNext] = useState<string | null>(null);
  const [err, setErr] = useState<unknown>(null);
  const filter = q ? "name ILIKE " + sqlString("%" + q + "%") : "";
  const load = (token: string | null, signal?: AbortSignal) =>
    searchModels(filter, token, signal).then(
      (r) => {
        setErr(null);
        setModels((old) => (token && old ? [...old, ...r.registered_models] : r.registered_models));
        setNext(r.next_page_token || null);
      },
      (e) => (e as Error).name !== "AbortError" && setErr(e),
    );
  useEffect(() => {
    const ac = new AbortController();
    load(null, ac.signal);
    return () => ac.abort();
  }, [filter]);
  return (
    <div class="models">
      <h1>Registered models</h1>
      <div class="toolbar">
        <input type="search" placeholder="Search by name" value={q} onInput={(e) => setParams({ q: (e.target as HTMLInputElement).value }, { replace: true })} />
      </div>
      {err ? <ErrorView error={err} /> : null}
      {!models && !err && <div class="loading">Loading…</div>}
      {models && (
        <table class="plain" data-testid="models-table">
          <thead>
            <tr>
              <th>name</th>
              <th>latest versions</th>
              <th>aliases</th>
              <th>description</th>
              <th>updated</th>
            </tr>
          </thead>
          <tbody>
            {models.map((m) => (
              <tr data-testid="model-row">
                <td>
                  <a href={"#/models/" + encodeURIComponent(m.name)}>{m.name}</a>
                </td>
                <td>
                  {m.latest_versions.map((v) => (
                    <span class={"stage st-" + v.current_stage.toLowerCase()} title={v.current_stage}>
                      v{v.version} {v.current_stage !== "None" ? v.current_stage : ""}
                    </span>
                  ))}
                </td>
                <td>
                  {Object.entries(m.aliases).map(([a, v]) => (
                    <span class="alias">
                      @{a} → v{v}
                    </span>
                  ))}
                </td>
                <td class="desc">{m.description}</td>
                <td>{fmtTime(m.last_updated_timestamp)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {models && models.length === 0 && <div class="muted">No registered models{q ? " match" : ""}.</div>}
      {next && (
        <button class="more" onClick={() => load(next)}>
          Load more
        </button>
      )}
    </div>
  );
}

// ------------------------------------------------------------------ detail

function ModelDetail({ name }: { name: string }) {
  const [model, setModel] = useState<RegisteredModel | null>(null);
  const [versions, setVersions] = useState<ModelVersion[] | null>(null);
  const [runs, setRuns] = useState<Record<string, RunRef>>({});
  const [err, setErr] = useState<unknown>(null);
  const [actionErr, setActionErr] = useState<unknown>(null);
  const [tick, setTick] = useState(0);
  const reload = () => setTick((t) => t + 1);

  useEffect(() => {
    const ac = new AbortController();
    Promise.all([getModel(name, ac.signal), allVersions(name, ac.signal)]).then(
      ([m, vs]) => {
        setErr(null);
        setModel(m);
        setVersions(vs);
        const ids = Array.from(new Set(vs.map((v) => v.run_id).filter(Boolean)));
        if (ids.length) lookupRuns(ids, ac.signal).then(setRuns, () => {});
      },
      (e) => (e as Error).name !== "AbortError" && setErr(e),
    );
    return () => ac.abort();
  }, [name, tick]);

  // Controls are disabled for a credential without the edit scope (whoami; auth off has
  // no such route: everything is allowed) and after the server refuses a change (403).
  const [canEdit, setCanEdit] = useState(true);
  useEffect(() => {
    const ac = new AbortController();
    get<{ scopes: string[] }>("/api/v1/auth/whoami", {}, ac.signal).then(
      (r) => setCanEdit(r.scopes.some((s) => s === "edit" || s === "manage" || s === "admin")),
      () => undefined,
    );
    return () => ac.abort();
  }, []);
  const act = (p: Promise<unknown>) =>
    p.then(
      () => {
        setActionErr(null);
        reload();
      },
      (e) => {
        setActionErr(e);
        if (e instanceof ApiError && e.status === 403) setCanEdit(false);
      },
    );

  if (err) return <ErrorView error={err} />;
  if (!model || !versions) return <div class="loading">Loading model…</div>;
  return (
    <div class="models">
      <div class="crumbs">
        <a href="#/models">Models</a> <span class="muted">/</span>
      </div>
      <h1 data-testid="model-name">{model.name}</h1>
      {model.description && <p class="desc-full">{model.description}</p>}
      <div class="runmeta">
        <span>
          <span class="muted">created</span> {fmtTime(model.creation_timestamp)}
        </span>
        <span>
          <span class="muted">updated</span> {fmtTime(model.last_updated_timestamp)}
        </span>
        {Object.entries(model.tags).map(([k, v]) => (
          <span class="tag">
            {k}: {v}
          </span>
        ))}
      </div>
      {actionErr ? <ErrorView error={actionErr} change /> : null}
      {!canEdit && !actionErr && <div class="muted" data-testid="read-only">Read-only: your account may not change this model.</div>}

      <h2>Aliases</h2>
      <div class="aliases" data-testid="aliases">
        {Object.keys(model.aliases).length === 0 && <span class="muted">none</span>}
        {Object.entries(model.aliases).map(([a, v]) => (
          <span class="alias">
            @{a} → v{v}{" "}
            <button class="x" title={"remove alias " + a} data-testid="alias-delete" disabled={!canEdit} onClick={() => act(deleteAlias(model.name, a))}>
              ×
            </button>
          </span>
        ))}
        <AliasForm versions={versions} disabled={!canEdit} onSet={(alias, v) => act(setAlias(model.name, alias, v))} />
      </div>

      <h2>Versions ({versions.length})</h2>
      <table class="plain" data-testid="versions-table">
        <thead>
          <tr>
            <th>version</th>
            <th>stage</th>
            <th>aliases</th>
            <th>source run</th>
            <th>status</th>
            <th>created</th>
            <th>by</th>
            <th>description</th>
          </tr>
        </thead>
        <tbody>
          {versions.map((v) => (
            <tr data-testid="version-row" data-version={v.version}>
              <td>v{v.version}</td>
              <td>
                <StageControl v={v} disabled={!canEdit} onChange={(stage, archive) => act(transitionStage(model.name, v.version, stage, archive))} />
              </td>
              <td>
                {v.aliases.map((a) => (
                  <span class="alias">@{a}</span>
                ))}
              </td>
              <td>
                {v.run_id ? (
                  <a href={runLink(runs[v.run_id]?.experimentId || "0", v.run_id)} title={v.source}>
                    {runs[v.run_id]?.name || v.run_id.slice(0, 12)}
                  </a>
                ) : (
                  <span class="muted" title={v.source}>
                    {v.source}
                  </span>
                )}
              </td>
              <td>{v.status}</td>
              <td>{fmtTime(v.creation_timestamp)}</td>
              <td>{v.user_id}</td>
              <td class="desc">{v.description}</td>
            </tr>
          ))}
        </tbody>
      </table>

      <h2>Audit trail</h2>
      <Audit name={model.name} tick={tick} />
    </div>
  );
}

async function allVersions(name: string, signal: AbortSignal): Promise<ModelVersion[]> {
  const out: ModelVersion[] = [];
  let token: string | null = null;
  for (let i = 0; i < 50; i++) {
    const r = await searchVersions(name, token, signal);
    out.push(...r.model_versions);
    token = r.next_page_token;
    if (!token) break;
  }
  return out.sort((a, b) => Number(b.version) - Number(a.version));
}

function AliasForm({ versions, onSet, disabled }: { versions: ModelVersion[]; onSet: (alias: string, version: string) => void; disabled: boolean }) {
  const [alias, setAliasText] = useState("");
  const [version, setVersion] = useState(versions[0]?.version || "");
  return (
    <form
      class="alias-form"
      onSubmit={(e) => {
        e.preventDefault();
        if (alias.trim() && version) onSet(alias.trim(), version);
      }}
    >
      <input placeholder="alias" value={alias} data-testid="alias-input" disabled={disabled} onInput={(e) => setAliasText((e.target as HTMLInputElement).value)} />
      <select value={version} disabled={disabled} onChange={(e) => setVersion((e.target as HTMLSelectElement).value)} data-testid="alias-version">
        {versions.map((v) => (
          <option value={v.version}>v{v.version}</option>
        ))}
      </select>
      <button type="submit" data-testid="alias-set" disabled={disabled}>
        Set alias
      </button>
    </form>
  );
}

function StageControl({ v, onChange, disabled }: { v: ModelVersion; onChange: (stage: string, archive: boolean) => void; disabled: boolean }) {
  const [archive, setArchive] = useState(false);
  return (
    <span class="stagectl">
      <select
        value={v.current_stage}
        disabled={disabled}
        data-testid="stage-select"
        onChange={(e) => {
          const s = (e.target as HTMLSelectElement).value;
          if (s !== v.current_stage) onChange(s, archive);
        }}
      >
        {STAGES.map((s) => (
          <option value={s}>{s}</option>
        ))}
      </select>
      <label class="small muted" title="archive the versions now in the target stage">
        <input type="checkbox" checked={archive} disabled={disabled} onChange={(e) => setArchive((e.target as HTMLInputElement).checked)} /> archive others
      </label>
    </span>
  );
}

function change(e: AuditEntry): string {
  const b = e.before || {},
    a = e.after || {};
  const keys = Array.from(new Set([...Object.keys(b), ...Object.keys(a)])).filter(
    (k) => k !== "row_version" && k !== "last_updated_timestamp" && JSON.stringify((b as any)[k]) !== JSON.stringify((a as any)[k]),
  );
  if (!e.before) return keys.length ? "created" : "";
  return keys.map((k) => k + ": " + short((b as any)[k]) + " → " + short((a as any)[k])).join("; ");
}

function short(v: unknown): string {
  const s = v === undefined ? "–" : typeof v === "string" ? v : JSON.stringify(v);
  return s.length > 80 ? s.slice(0, 79) + "…" : s;
}

function Audit({ name, tick }: { name: string; tick: number }) {
  const [entries, setEntries] = useState<AuditEntry[] | null>(null);
  const [next, setNext] = useState<string | null>(null);
  const [err, setErr] = useState<unknown>(null);
  const load = (token: string | null, signal?: AbortSignal) =>
    auditLog(name, token, signal).then(
      (r) => {
        setErr(null);
        setEntries((old) => (token && old ? [...old, ...r.entries] : r.entries));
        setNext(r.next_page_token || null);
      },
      (e) => (e as Error).name !== "AbortError" && setErr(e),
    );
  useEffect(() => {
    const ac = new AbortController();
    load(null, ac.signal);
    return () => ac.abort();
  }, [name, tick]);
  if (err) return <ErrorView error={err} />;
  if (!entries) return <div class="loading">Loading audit trail…</div>;
  if (!entries.length) return <div class="muted">No entries.</div>;
  return (
    <>
      <table class="plain audit" data-testid="audit-table">
        <thead>
          <tr>
            <th>time</th>
            <th>who</th>
            <th>action</th>
            <th>what</th>
            <th>change</th>
            <th>comment</th>
          </tr>
        </thead>
        <tbody>
          {entries.map((e) => (
            <tr>
              <td>{fmtTime(e.timestamp)}</td>
              <td>{e.actor}</td>
              <td>{e.action}</td>
              <td>{e.version ? "v" + e.version : e.entity_id}</td>
              <td class="change">{change(e)}</td>
              <td>{e.comment}</td>
            </tr>
          ))}
        </tbody>
      </table>
      {next && (
        <button class="more" onClick={() => load(next)}>
          Load more
        </button>
      )}
    </>
  );
}
