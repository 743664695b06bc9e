// Column picker: every metric, param and tag key of the shown experiments,
// searchable; stays fast at 10,000+ keys because filtering is one pass over
// plain strings and only the first MAX_SHOWN matches are put in the DOM.
import { useEffect, useMemo, useRef, useState } from "preact/hooks";
import { fmtCount } from "../../lib/format";
import { endAfterFrame, start } from "../../lib/perf";
import { rankKeys } from "./filter";
import type { Keys } from "./filterbox";

export const MAX_SHOWN = 200;
type K = "metrics" | "params" | "tags";

export interface ColRef {
  kind: K;
  key: string;
}

interface Props {
  keys: Keys;
  chosen: ColRef[];
  onToggle: (c: ColRef) => void;
  onClear: () => void;
  onClose: () => void;
}

export function ColumnPicker({ keys, chosen, onToggle, onClear, onClose }: Props) {
  const [q, setQ] = useState("");
  const input = useRef<HTMLInputElement>(null);
  useEffect(() => input.current?.focus(), []);
  const chosenSet = useMemo(() => new Set(chosen.map((c) => c.kind + "\u0000" + c.key)), [chosen]);

  const lists = useMemo(() => {
    const out: { kind: K; items: string[]; total: number }[] = [];
    let budget = MAX_SHOWN;
    for (const kind of ["metrics", "params", "tags"] as K[]) {
      const all = keys[kind];
      const matches = q ? countAndRank(all, q, budget) : { items: all.slice(0, budget), total: all.length };
      budget = Math.max(0, budget - matches.items.length);
      out.push({ kind, ...matches });
    }
    return out;
  }, [keys, q]);

  useEffect(() => {
    void endAfterFrame("picker_filter");
  }, [lists]);

  const n = keys.metrics.length + keys.params.length + keys.tags.length;
  return (
    <div class="picker" data-testid="column-picker">
      <div class="picker-head">
        <input
          ref={input}
          type="search"
          placeholder={`Search ${fmtCount(n)} keys`}
          value={q}
          data-testid="column-picker-search"
          onInput={(e) => {
            start("picker_filter");
            setQ((e.currentTarget as HTMLInputElement).value);
          }}
          onKeyDown={(e) => e.key === "Escape" && onClose()}
        />
        <button onClick={onClear} disabled={chosen.length === 0}>
          Clear ({chosen.length})
        </button>
        <button onClick={onClose}>Done</button>
      </div>
      <div class="picker-body">
        {lists.map((l) => (
          <div class="picker-group">
            <div class="picker-kind">
              {l.kind} <span class="muted">({fmtCount(l.total)}{l.total > l.items.length ? `, showing ${l.items.length}` : ""})</span>
            </div>
            {l.items.map((key) => {
              const id = l.kind + "\u0000" + key;
              return (
                <label class="picker-item" data-testid="column-picker-item" data-kind={l.kind} data-key={key}>
                  <input type="checkbox" checked={chosenSet.has(id)} onChange={() => onToggle({ kind: l.kind, key })} />
                  <span>{key}</span>
                </label>
              );
            })}
          </div>
        ))}
        {lists.every((l) => l.total === 0) && <div class="muted">No key contains “{q}”.</div>}
      </div>
    </div>
  );
}

function countAndRank(all: string[], q: string, limit: number): { items: string[]; total: number } {
  const p = q.toLowerCase();
  let total = 0;
  for (const k of all) if (k.toLowerCase().includes(p)) total++;
  return { items: rankKeys(all, q, limit), total };
}
