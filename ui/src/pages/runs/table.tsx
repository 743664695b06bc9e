// The virtualized runs grid: fixed-height rows positioned by hand over a capped
// scroll height (see cache.ts), so 1M rows scroll without 1M DOM nodes or 1M
// layout objects. Rows come from the WindowCache; missing ones show a
// placeholder while their block loads.
import { ComponentChildren } from "preact";
import { useEffect, useLayoutEffect, useRef, useState } from "preact/hooks";
import { contentHeight, firstRowAt, scrollTopFor } from "./cache";

export const ROW_H = 28;
export const OVERSCAN = 8;

export interface Column<R> {
  id: string;
  label: string;
  title?: string;
  width: number;
  align?: "num";
  cls?: string;
  /** order_by field text ("attributes.start_time", "metrics.`x`"); absent = not sortable */
  sortField?: string;
  /** stable id for data-testid sort-header-<id> */
  sortId?: string;
  render: (row: R, index: number) => ComponentChildren;
}

export interface GridProps<R> {
  count: number;
  columns: Column<R>[];
  rowAt: (i: number) => R | undefined;
  rowClass?: (row: R, i: number) => string;
  sort: { field: string; asc: boolean } | null;
  onSort: (col: Column<R>) => void;
  /** first visible row changed (rows first..last, exclusive) */
  onRange: (first: number, last: number) => void;
  /** jump request: a row index to bring to the top (changes identity per request) */
  jump: { row: number } | null;
  /** rendered: called after each commit with the visible range */
  onRendered?: (first: number, last: number) => void;
  initialRow?: number;
}

export function Grid<R>(props: GridProps<R>) {
  const { count, columns } = props;
  const scroller = useRef<HTMLDivElement>(null);
  const header = useRef<HTMLDivElement>(null);
  const [scrollTop, setScrollTop] = useState(0);
  const [viewH, setViewH] = useState(600);
  const initial = useRef(props.initialRow || 0);

  useLayoutEffect(() => {
    const el = scroller.current!;
    const ro = new ResizeObserver(() => setViewH(el.clientHeight || 600));
    ro.observe(el);
    setViewH(el.clientHeight || 600);
    return () => ro.disconnect();
  }, []);

  // jump to a row (deep scroll, URL ?row=)
  useLayoutEffect(() => {
    const el = scroller.current;
    if (!el || !props.jump) return;
    const top = scrollTopFor(props.jump.row, count, ROW_H, el.clientHeight || viewH);
    el.scrollTop = top;
    setScrollTop(el.scrollTop);
  }, [props.jump]);

  // restore the row from the URL once the count is known
  useLayoutEffect(() => {
    const el = scroller.current;
    if (!el || !initial.current || count === 0) return;
    el.scrollTop = scrollTopFor(initial.current, count, ROW_H, el.clientHeight || viewH);
    setScrollTop(el.scrollTop);
    initial.current = 0;
  }, [count > 0]);

  const totalW = columns.reduce((a, c) => a + c.width, 0);
  const h = contentHeight(count, ROW_H);
  const firstF = firstRowAt(scrollTop, count, ROW_H, viewH);
  const first = Math.floor(firstF);
  const visible = Math.ceil(viewH / ROW_H) + 1;
  const lo = Math.max(0, first - OVERSCAN);
  const hi = Math.min(count, first + visible + OVERSCAN);

  useEffect(() => {
    props.onRange(first, Math.min(count, first + visible));
  }, [first, visible, count]);
  useEffect(() => {
    props.onRendered?.(first, Math.min(count, first + visible));
  });

  const rows = [];
  for (let i = lo; i < hi; i++) {
    const r = props.rowAt(i);
    const top = scrollTop + (i - firstF) * ROW_H;
    rows.push(
      <div
        key={i}
        class={"grow" + (r ? "" : " loading-row") + (r && props.rowClass ? " " + props.rowClass(r, i) : "")}
        data-testid="run-row"
        data-row-index={i}
        data-loaded={r ? "1" : "0"}
        style={{ top: top + "px", width: totalW + "px" }}
      >
        {columns.map((c) => (
          <div class={"gcell" + (c.align === "num" ? " num" : "") + (c.cls ? " " + c.cls : "")} style={{ width: c.width + "px" }}>
            {r ? c.render(r, i) : ""}
          </div>
        ))}
      </div>,
    );
  }

  return (
    <div class="grid">
      <div class="ghead" ref={header}>
        <div class="ghead-inner" style={{ width: totalW + "px" }}>
          {columns.map((c) => {
            const active = props.sort && c.sortField && props.sort.field === c.sortField;
            return (
              <div
                class={"gcell ghcell" + (c.sortField ? " sortable" : "") + (active ? " sorted" : "") + (c.align === "num" ? " num" : "")}
                style={{ width: c.width + "px" }}
                title={c.title || c.label}
                data-testid={c.sortField ? "sort-header-" + (c.sortId || c.id) : undefined}
                onClick={() => c.sortField && props.onSort(c)}
              >
                {c.label}
                {active ? (props.sort!.asc ? " ▲" : " ▼") : ""}
              </div>
            );
          })}
        </div>
      </div>
      <div
        class="gbody"
        ref={scroller}
        data-testid="runs-table"
        data-count={count}
        onScroll={(e) => {
          const el = e.currentTarget as HTMLDivElement;
          setScrollTop(el.scrollTop);
          if (header.current) header.current.scrollLeft = el.scrollLeft;
        }}
      >
        <div class="gspacer" style={{ height: h + "px", width: totalW + "px" }}>
          {rows}
        </div>
      </div>
    </div>
  );
}
