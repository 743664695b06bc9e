// Filter input: the full search grammar, autocomplete of metric/param/tag keys
// at the caret, and the server parser's error shown under the text at its position.
import { useRef, useState } from "preact/hooks";
import { completionAt, suggestions } from "./filter";

export interface Keys {
  metrics: string[];
  params: string[];
  tags: string[];
}

interface Props {
  value: string;
  keys: Keys;
  error: { message: string; position?: number } | null;
  /** typing (replaceState) */
  onEdit: (v: string) => void;
  /** Enter / Apply (a history entry + requery) */
  onSubmit: (v: string) => void;
}

export function FilterBox({ value, keys, error, onEdit, onSubmit }: Props) {
  const input = useRef<HTMLInputElement>(null);
  const [caret, setCaret] = useState<number | null>(null);
  const [active, setActive] = useState(0);
  const [closed, setClosed] = useState(false);

  const comp = caret === null ? null : completionAt(value, caret);
  const sugg = comp && !closed ? suggestions(comp, keys) : [];

  const apply = (insert: string) => {
    if (!comp) return;
    const next = value.slice(0, comp.start) + insert + value.slice(comp.end);
    const pos = comp.start + insert.length;
    onEdit(next);
    setCaret(pos);
    setActive(0);
    requestAnimationFrame(() => {
      const el = input.current;
      if (el) {
        el.focus();
        el.setSelectionRange(pos, pos);
      }
    });
  };

  return (
    <div class="filterbox">
      <div class="filterrow">
        <input
          ref={input}
          type="text"
          class={"filter" + (error ? " invalid" : "")}
          spellcheck={false}
          autocomplete="off"
          placeholder="Filter: metrics.loss < 0.5 AND params.lr = '0.01' OR tags.team LIKE 'vis%'"
          value={value}
          data-testid="filter-input"
          aria-invalid={error ? "true" : "false"}
          onInput={(e) => {
            const el = e.currentTarget as HTMLInputElement;
            setCaret(el.selectionStart);
            setClosed(false);
            setActive(0);
            onEdit(el.value);
          }}
          onClick={(e) => setCaret((e.currentTarget as HTMLInputElement).selectionStart)}
          onKeyUp={(e) => {
            if (e.key === "ArrowLeft" || e.key === "ArrowRight" || e.key === "Home" || e.key === "End")
              setCaret((e.currentTarget as HTMLInputElement).selectionStart);
          }}
          onBlur={() => setTimeout(() => setClosed(true), 150)}
          onFocus={() => setClosed(false)}
          onKeyDown={(e) => {
            if (sugg.length && (e.key === "ArrowDown" || e.key === "ArrowUp")) {
              e.preventDefault();
              setActive((a) => (a + (e.key === "ArrowDown" ? 1 : sugg.length - 1)) % sugg.length);
            } else if (sugg.length && e.key === "Tab") {
              e.preventDefault();
              apply(sugg[active].insert);
            } else if (e.key === "Escape") {
              setClosed(true);
            } else if (e.key === "Enter") {
              e.preventDefault();
              if (sugg.length && !closed && comp && comp.partial && active >= 0 && (e.ctrlKey || e.metaKey) === false && sugg[active].insert.trim() !== comp.partial) {
                // Enter picks the highlighted key while a key is being typed
                apply(sugg[active].insert);
                return;
              }
              setClosed(true);
              onSubmit((e.currentTarget as HTMLInputElement).value);
            }
          }}
        />
        <button onClick={() => onSubmit(value)} data-testid="filter-apply">Apply</button>
        {value && (
          <button onClick={() => onSubmit("")} title="Clear the filter">
            Clear
          </button>
        )}
      </div>
      {sugg.length > 0 && (
        <ul class="suggest" data-testid="filter-suggestions" role="listbox">
          {sugg.map((s, i) => (
            <li
              class={i === active ? "active" : ""}
              role="option"
              onMouseDown={(e) => {
                e.preventDefault();
                apply(s.insert);
              }}
            >
              {s.label}
            </li>
          ))}
        </ul>
      )}
      {error && <FilterError text={value} error={error} />}
    </div>
  );
}

function FilterError({ text, error }: { text: string; error: { message: string; position?: number } }) {
  const pos = error.position;
  return (
    <div class="filter-error" data-testid="filter-error" data-position={pos === undefined ? "" : String(pos)} role="alert">
      <div>{error.message}</div>
      {pos !== undefined && (
        <pre class="caret-line">
          {text}
          {"\n"}
          {" ".repeat(Math.min(pos, text.length))}
          <span class="caret-mark">^</span>
        </pre>
      )}
    </div>
  );
}
