// The filter box's autocomplete: which field is being typed at the caret.
// Mirrors the server grammar (query/_grammar.py): prefix '.' key, keys bare
// ([A-Za-z_][\w\-:/]* joined by dots) or `backticked`; strings in quotes.

export type Kind = "metrics" | "params" | "tags" | "attributes";

export const PREFIXES: Record<string, Kind> = {
  metrics: "metrics", metric: "metrics",
  params: "params", param: "params", parameter: "params", parameters: "params",
  tags: "tags", tag: "tags",
  attributes: "attributes", attribute: "attributes", attr: "attributes", run: "attributes",
};

export const ATTRIBUTES = ["run_id", "run_name", "status", "user_id", "experiment_id", "lifecycle_stage", "start_time", "end_time"];

export interface Completion {
  /** replace text[start, end) with the chosen suggestion */
  start: number;
  end: number;
  /** null: typing a prefix (suggest "metrics." ...); else the key kind */
  kind: Kind | null;
  partial: string;
}

const BARE = /^[A-Za-z_][\w\-:/]*(\.[A-Za-z_][\w\-:/]*)*$/;

export function quoteKey(key: string): string {
  return BARE.test(key) ? key : "`" + key.replace(/`/g, "``") + "`";
}

/** Column / sort field text for the server: metrics.`my key` */
export function fieldText(kind: Kind, key: string): string {
  return kind + "." + quoteKey(key);
}

/** Is `pos` inside a quoted string or backticks? Returns the opening quote char or "". */
export function openQuote(text: string, pos: number): string {
  let q = "";
  for (let i = 0; i < pos; i++) {
    const c = text[i];
    if (q) {
      if (c === "\\" && q !== "`") i++;
      else if (c === q) {
        if (text[i + 1] === q && i + 1 < pos) i++;
        else q = "";
      }
    } else if (c === "'" || c === '"' || c === "`") q = c;
  }
  return q;
}

const STOP = /[\s()<>=!,'"]/;

export function completionAt(text: string, caret: number): Completion | null {
  const q = openQuote(text, caret);
  if (q === "'" || q === '"') return null; // typing a value
  let start = caret;
  if (q === "`") {
    // inside `...: the token starts at the prefix before the backtick
    start = text.lastIndexOf("`", caret - 1);
    while (start > 0 && !STOP.test(text[start - 1])) start--;
  } else {
    while (start > 0 && !STOP.test(text[start - 1])) start--;
  }
  let end = caret;
  while (end < text.length && !STOP.test(text[end])) end++;
  const token = text.slice(start, caret);
  // a value position (after an operator) is not a field
  const before = text.slice(0, start).trimEnd();
  if (/(=|<|>|!=|<>|\bLIKE|\bILIKE|\bIN)$/i.test(before)) return null;
  const dot = token.indexOf(".");
  if (dot < 0) {
    if (/^(and|or|not|in|like|ilike)$/i.test(token)) return null;
    // a field starts the text, or follows AND / OR / "("; anywhere else it is a value or keyword
    if (before && !/(\bAND|\bOR|\()$/i.test(before)) return null;
    return { start, end, kind: null, partial: token };
  }
  const kind = PREFIXES[token.slice(0, dot).toLowerCase()];
  if (!kind) return null;
  let partial = token.slice(dot + 1);
  if (partial.startsWith("`")) partial = partial.slice(1).replace(/``/g, "`");
  return { start, end, kind, partial };
}

/** Keys matching `partial`: prefix matches first, then substring matches (case-insensitive). */
export function rankKeys(keys: string[], partial: string, limit: number): string[] {
  const p = partial.toLowerCase();
  if (!p) return keys.slice(0, limit);
  const pre: string[] = [];
  const sub: string[] = [];
  for (const k of keys) {
    const i = k.toLowerCase().indexOf(p);
    if (i === 0) pre.push(k);
    else if (i > 0 && sub.length < limit) sub.push(k);
    if (pre.length >= limit) break;
  }
  return pre.concat(sub).slice(0, limit);
}

export function suggestions(c: Completion, keys: Record<"metrics" | "params" | "tags", string[]>, limit = 12): { label: string; insert: string }[] {
  if (c.kind === null) {
    const p = c.partial.toLowerCase();
    return ["metrics", "params", "tags", "attributes"].filter((x) => x.startsWith(p) && x !== p)
      .map((x) => ({ label: x + ".", insert: x + "." }));
  }
  const pool = c.kind === "attributes" ? ATTRIBUTES : keys[c.kind] || [];
  return rankKeys(pool, c.partial, limit).map((k) => ({ label: c.kind + "." + k, insert: fieldText(c.kind as Kind, k) + " " }));
}
