// Artifact browser of one run: a lazily expanded tree with sizes, download links, and a
// preview of text, JSON, YAML, CSV/TSV and images. Everything is rendered as text or as
// <img src="blob:..."> with an image type we choose; HTML is never interpreted.
// URL state: a=<selected path>.
import { useEffect, useState } from "preact/hooks";
import { ArtifactFile, artifactUrl, listArtifacts } from "../../lib/api_runs";
import { ApiError } from "../../lib/api";
import { ErrorView } from "../../lib/errors";
import { Route, setParams } from "../../lib/url";
import "./artifacts.css";

const TEXT_LIMIT = 2 * 1024 * 1024;
const IMAGE_LIMIT = 20 * 1024 * 1024;
const CSV_ROWS = 500;

const IMAGE_TYPES: Record<string, string> = {
  png: "image/png",
  jpg: "image/jpeg",
  jpeg: "image/jpeg",
  gif: "image/gif",
  webp: "image/webp",
  bmp: "image/bmp",
  svg: "image/svg+xml",
  ico: "image/x-icon",
  avif: "image/avif",
};
const BINARY_EXT = new Set(["pkl", "pickle", "pt", "pth", "bin", "onnx", "h5", "hdf5", "npy", "npz", "parquet", "zip", "gz", "tar", "whl", "so", "safetensors", "joblib", "ckpt", "tflite", "pb"]);

export function ext(path: string): string {
  const base = path.split("/").pop() || "";
  const i = base.lastIndexOf(".");
  return i > 0 ? base.slice(i + 1).toLowerCase() : "";
}

export function fmtBytes(n: number | undefined): string {
  if (n === undefined || n === null) return "";
  if (n < 1024) return n + " B";
  const u = ["KB", "MB", "GB", "TB"];
  let v = n / 1024,
    i = 0;
  while (v >= 1024 && i < u.length - 1) {
    v /= 1024;
    i++;
  }
  return (v < 10 ? v.toFixed(1) : Math.round(v)) + " " + u[i];
}

export function ArtifactBrowser(props: { experimentId: string; runId: string; route: Route }) {
  const { runId, experimentId, route } = props;
  const selected = route.params.get("a") || "";
  const [sizes, setSizes] = useState<Record<string, ArtifactFile>>({});
  const note = (files: ArtifactFile[]) => setSizes((old) => {
    const out = { ...old };
    for (const f of files) out[f.path] = f;
    return out;
  });
  const sel = sizes[selected];
  return (
    <div class="artifacts">
      <div class="art-tree" data-testid="artifact-tree">
        <Dir runId={runId} path="" depth={0} selected={selected} onFiles={note} initiallyOpen />
      </div>
      <div class="art-preview-pane">
        {selected && sel && !sel.is_dir ? (
          <Preview key={selected} experimentId={experimentId} runId={runId} file={sel} />
        ) : (
          <div class="muted">{selected && !sel ? "Loading…" : "Select a file to preview it."}</div>
        )}
      </div>
    </div>
  );
}

function Dir(props: { runId: string; path: string; depth: number; selected: string; onFiles: (f: ArtifactFile[]) => void; initiallyOpen?: boolean }) {
  const { runId, path, depth, selected } = props;
  const onPath = selected === path || selected.startsWith(path ? path + "/" : "");
  const [open, setOpen] = useState<boolean>(!!props.initiallyOpen || (path !== "" && onPath && selected !== path));
  const [files, setFiles] = useState<ArtifactFile[] | null>(null);
  const [err, setErr] = useState<unknown>(null);
  useEffect(() => {
    if (!open || files) return;
    const ac = new AbortController();
    listArtifacts(runId, path, ac.signal).then(
      (fs) => {
        fs.sort((a, b) => (a.is_dir === b.is_dir ? a.path.localeCompare(b.path) : a.is_dir ? -1 : 1));
        setFiles(fs);
        props.onFiles(fs);
      },
      (e) => (e as Error).name !== "AbortError" && setErr(e),
    );
    return () => ac.abort();
  }, [open, runId, path]);
  const name = path.split("/").pop() || "";
  return (
    <div class="art-dir">
      {path !== "" && (
        <div
          class={"art-row dir" + (selected === path ? " sel" : "")}
          data-testid="artifact-item"
          data-path={path}
          data-depth={depth}
          onClick={() => setOpen(!open)}
        >
          <span class={"art-indent d" + Math.min(depth, 12)} />
          <span class="art-twist">{open ? "▾" : "▸"}</span>
          <span class="art-name">{name}/</span>
        </div>
      )}
      {open && err ? <ErrorView error={err} /> : null}
      {open && !files && !err ? <div class="muted art-loading">loading…</div> : null}
      {open && files && files.length === 0 && path === "" ? <div class="muted">This run has no artifacts.</div> : null}
      {open &&
        files &&
        files.map((f) =>
          f.is_dir ? (
            <Dir key={f.path} runId={runId} path={f.path} depth={depth + 1} selected={selected} onFiles={props.onFiles} />
          ) : (
            <div
              key={f.path}
              class={"art-row file" + (selected === f.path ? " sel" : "")}
              data-testid="artifact-item"
              data-path={f.path}
              onClick={() => setParams({ a: f.path })}
              title={f.path}
            >
              <span class={"art-indent d" + Math.min(depth + 1, 12)} />
              <span class="art-twist" />
              <span class="art-name">{f.path.split("/").pop()}</span>
              <span class="art-size">{fmtBytes(f.file_size)}</span>
            </div>
          ),
        )}
    </div>
  );
}

type Shown =
  | { kind: "text"; text: string; truncated: boolean; lang: string }
  | { kind: "csv"; rows: string[][]; more: boolean }
  | { kind: "image"; url: string }
  | { kind: "none"; why: string };

export function parseCsv(text: string, sep: string, maxRows: number): { rows: string[][]; more: boolean } {
  const rows: string[][] = [];
  let row: string[] = [],
    cell = "",
    q = false;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i];
    if (q) {
      if (ch === '"') {
        if (text[i + 1] === '"') {
          cell += '"';
          i++;
        } else q = false;
      } else cell += ch;
      continue;
    }
    if (ch === '"' && cell === "") q = true;
    else if (ch === sep) {
      row.push(cell);
      cell = "";
    } else if (ch === "\n" || ch === "\r") {
      if (ch === "\r" && text[i + 1] === "\n") i++;
      row.push(cell);
      cell = "";
      rows.push(row);
      row = [];
      if (rows.length > maxRows) return { rows: rows.slice(0, maxRows), more: true };
    } else cell += ch;
  }
  if (cell !== "" || row.length) {
    row.push(cell);
    rows.push(row);
  }
  return { rows: rows.slice(0, maxRows), more: rows.length > maxRows };
}

function Preview({ experimentId, runId, file }: { experimentId: string; runId: string; file: ArtifactFile }) {
  const url = artifactUrl(experimentId, runId, file.path);
  const e = ext(file.path);
  const [shown, setShown] = useState<Shown | null>(null);
  const [err, setErr] = useState<unknown>(null);
  useEffect(() => {
    const ac = new AbortController();
    let objectUrl = "";
    const size = file.file_size ?? 0;
    (async () => {
      const img = IMAGE_TYPES[e];
      if (img) {
        if (size > IMAGE_LIMIT) return setShown({ kind: "none", why: "image too large to preview (" + fmtBytes(size) + ")" });
        const blob = await fetchBlob(url, ac.signal);
        objectUrl = URL.createObjectURL(new Blob([blob], { type: img }));
        return setShown({ kind: "image", url: objectUrl });
      }
      if (BINARY_EXT.has(e)) return setShown({ kind: "none", why: "binary file: download it to open it" });
      const truncated = size > TEXT_LIMIT;
      const blob = await fetchBlob(url, ac.signal, truncated ? TEXT_LIMIT : 0);
      const buf = new Uint8Array(await blob.arrayBuffer());
      const head = buf.subarray(0, Math.min(buf.length, 8000));
      if (head.includes(0)) return setShown({ kind: "none", why: "binary file: download it to open it" });
      const text = new TextDecoder("utf-8", { fatal: false }).decode(buf);
      if ((e === "csv" || e === "tsv") && !truncated) {
        const r = parseCsv(text, e === "tsv" ? "\t" : ",", CSV_ROWS);
        return setShown({ kind: "csv", rows: r.rows, more: r.more });
      }
      if (e === "json" && !truncated) {
        try {
          return setShown({ kind: "text", text: JSON.stringify(JSON.parse(text), null, 2), truncated, lang: "json" });
        } catch {
          /* shown as text below */
        }
      }
      const lang = e === "yaml" || e === "yml" ? "yaml" : e === "json" ? "json" : "text";
      setShown({ kind: "text", text, truncated, lang });
    })().catch((x) => {
      if ((x as Error).name !== "AbortError") setErr(x);
    });
    return () => {
      ac.abort();
      if (objectUrl) URL.revokeObjectURL(objectUrl);
    };
  }, [url]);
  const name = file.path.split("/").pop() || file.path;
  return (
    <div class="art-preview" data-testid="artifact-preview" data-path={file.path} data-kind={shown ? shown.kind : ""}>
      <div class="art-preview-head">
        <span class="art-path">{file.path}</span>
        <span class="muted">{fmtBytes(file.file_size)}</span>
        <a class="button" href={url} download={name} data-testid="artifact-download">
          Download
        </a>
      </div>
      {err ? <ErrorView error={err} /> : null}
      {!shown && !err && <div class="muted">Loading preview…</div>}
      {shown && shown.kind === "text" && (
        <>
          {shown.truncated && <div class="muted">First {fmtBytes(TEXT_LIMIT)} shown; download for the whole file.</div>}
          <pre class={"art-text lang-" + shown.lang}>{shown.text}</pre>
        </>
      )}
      {shown && shown.kind === "csv" && (
        <div class="art-csv">
          <table class="plain">
            {shown.rows.length > 0 && (
              <thead>
                <tr>
                  {shown.rows[0].map((c) => (
                    <th>{c}</th>
                  ))}
                </tr>
              </thead>
            )}
            <tbody>
              {shown.rows.slice(1).map((r) => (
                <tr>
                  {r.map((c) => (
                    <td>{c}</td>
                  ))}
                </tr>
              ))}
            </tbody>
          </table>
          {shown.more && <div class="muted">First {CSV_ROWS} rows shown; download for the whole file.</div>}
        </div>
      )}
      {shown && shown.kind === "image" && <img class="art-img" src={shown.url} alt={name} />}
      {shown && shown.kind === "none" && <div class="muted">{shown.why}</div>}
    </div>
  );
}

async function fetchBlob(url: string, signal: AbortSignal, limit = 0): Promise<Blob> {
  const res = await fetch(url, { credentials: "same-origin", signal, headers: limit ? { Range: "bytes=0-" + (limit - 1) } : {} });
  if (!res.ok) {
    let data: any = {};
    try {
      data = await res.json();
    } catch {
      /* not JSON */
    }
    throw new ApiError(res.status, String(data.error_code || "HTTP_" + res.status), String(data.message || res.statusText), data);
  }
  if (!limit || !res.body) return res.blob();
  // read at most `limit` bytes (the server may ignore Range)
  const reader = res.body.getReader();
  const parts: Uint8Array[] = [];
  let got = 0;
  while (got < limit) {
    const { value, done } = await reader.read();
    if (done) break;
    parts.push(value);
    got += value.length;
  }
  void reader.cancel();
  const out = new Uint8Array(Math.min(got, limit));
  let o = 0;
  for (const p of parts) {
    const take = Math.min(p.length, out.length - o);
    out.set(p.subarray(0, take), o);
    o += take;
    if (o >= out.length) break;
  }
  return new Blob([out]);
}
