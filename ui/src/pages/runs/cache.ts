// Window cache of the runs table: rows are fetched from the server in blocks by
// offset (POST /ui-api/v1/runs/window) as they scroll into view, so a table over
// 1M runs holds only the blocks near what was shown. One cache per query shape
// (experiments, filter, sort, columns, nesting): a new shape gets a new cache and
// answers for an old shape are dropped.

export interface RunRow {
  run_id: string;
  experiment_id: string;
  run_name: string;
  user_id: string;
  status: string;
  start_time: number;
  end_time: number | null;
  lifecycle_stage: string;
  metrics: Record<string, number | string>;
  params: Record<string, string>;
  tags: Record<string, string>;
  parent_run_id: string;
  child_count?: number;
}

export interface WindowAnswer {
  offset: number;
  total: number | null;
  rows: RunRow[];
}

export type Fetcher = (offset: number, limit: number, withTotal: boolean, signal: AbortSignal) => Promise<WindowAnswer>;

export class WindowCache {
  readonly block: number;
  readonly maxBlocks: number;
  total: number | null = null;
  error: unknown = null;
  private blocks = new Map<number, RunRow[]>();
  /** the blocks of the cache this one replaced when only the columns changed (the same
   * runs in the same order): shown while this cache's first rows load, never counted as
   * loaded (`has`, `covers`), so they are still asked for; dropped when the first rows
   * arrive (kept longer, rows read long ago could show beside new ones, or come back
   * after their block was evicted) */
  private standIn: Map<number, RunRow[]> | null = null;
  private inflight = new Map<number, Promise<void>>();
  private ctrl = new AbortController();
  private listeners = new Set<() => void>();

  constructor(private fetcher: Fetcher, block = 100, maxBlocks = 300) {
    this.block = block;
    this.maxBlocks = maxBlocks;
  }

  subscribe(fn: () => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  private emit() {
    for (const l of this.listeners) l();
  }

  get(i: number): RunRow | undefined {
    const n = Math.floor(i / this.block);
    const b = this.blocks.get(n) ?? this.standIn?.get(n);
    return b ? b[i % this.block] : undefined;
  }

  /** Show `prev`'s rows (its own, already fetched) until this cache has its own: for a
   * change of columns only, so the table keeps its rows instead of blanking them. The
   * new columns' cells stay empty until the rows with them arrive. */
  standInFor(prev: WindowCache): void {
    if (prev.block === this.block && !this.blocks.size) this.standIn = prev.blocks.size ? prev.blocks : prev.standIn;
  }

  has(i: number): boolean {
    return this.blocks.has(Math.floor(i / this.block));
  }

  /** Rows from..to (exclusive) all loaded? */
  covers(from: number, to: number): boolean {
    const last = this.total === null ? to : Math.min(to, this.total);
    for (let b = Math.floor(from / this.block); b * this.block < last; b++) if (!this.blocks.has(b)) return false;
    return true;
  }

  /** Fetch the blocks of rows from..to (exclusive) that are missing; resolves when all are in.
   * Contiguous missing blocks go in one request (a deep window costs one sort on the server). */
  ensure(from: number, to: number): Promise<void> {
    from = Math.max(0, from);
    if (this.total !== null) to = Math.min(to, this.total);
    const waits: Promise<void>[] = [];
    const first = Math.floor(from / this.block);
    const last = Math.max(first, Math.ceil(to / this.block) - 1);
    let runStart = -1;
    const flush = (end: number) => {
      if (runStart >= 0) waits.push(this.load(runStart, end - runStart + 1, false));
      runStart = -1;
    };
    for (let b = first; b <= last; b++) {
      const running = this.inflight.get(b);
      const skip = this.blocks.has(b) || running !== undefined || (this.total !== null && b * this.block >= this.total && b > 0);
      if (this.blocks.has(b)) this.touch(b);
      if (running) waits.push(running);
      if (skip) {
        flush(b - 1);
        continue;
      }
      if (runStart < 0) runStart = b;
    }
    flush(last);
    return Promise.all(waits).then(() => undefined);
  }

  /** Re-read blocks (live updates of running runs); the rows are replaced in place. */
  refresh(from: number, to: number): Promise<void> {
    const first = Math.floor(Math.max(0, from) / this.block);
    const last = Math.max(first, Math.ceil(to / this.block) - 1);
    return this.load(first, last - first + 1, true);
  }

  private load(b0: number, n: number, force: boolean): Promise<void> {
    const withTotal = this.total === null || force;
    const p = this.fetcher(b0 * this.block, n * this.block, withTotal, this.ctrl.signal).then(
      (ans) => {
        if (this.ctrl.signal.aborted) return;
        this.accept(b0, n, ans);
        this.emit();
      },
      (e) => {
        if (this.ctrl.signal.aborted || (e && e.name === "AbortError")) return;
        this.error = e;
        this.emit();
      },
    ).finally(() => {
      for (let i = 0; i < n; i++) if (this.inflight.get(b0 + i) === p) this.inflight.delete(b0 + i);
    });
    for (let i = 0; i < n; i++) this.inflight.set(b0 + i, p);
    return p;
  }

  /** Rows already in hand for the blocks from b0 (a window answer the page found
   * ready when it mounted): held as if they had been fetched, without a request. */
  seed(b0: number, ans: WindowAnswer): void {
    this.accept(b0, Math.max(1, Math.ceil(ans.rows.length / this.block)), ans);
  }

  private accept(b0: number, n: number, ans: WindowAnswer) {
    this.standIn = null;
    if (ans.total !== null && ans.total !== undefined) this.total = ans.total;
    for (let i = 0; i < n; i++) this.blocks.set(b0 + i, ans.rows.slice(i * this.block, (i + 1) * this.block));
    this.error = null;
    this.evict();
  }

  private touch(b: number) {
    const rows = this.blocks.get(b)!;
    this.blocks.delete(b);
    this.blocks.set(b, rows); // Map keeps insertion order: most recent last
  }

  private evict() {
    while (this.blocks.size > this.maxBlocks) {
      const oldest = this.blocks.keys().next().value as number;
      this.blocks.delete(oldest);
    }
  }

  dispose() {
    this.ctrl.abort();
    this.listeners.clear();
  }
}

// ---------------------------------------------------------------- nesting
// The table shows top-level runs; an expanded parent shows its children right
// under it. Display index -> which row, with the expansions sorted by parent index.

export interface Expansion {
  parentIndex: number; // index among top-level rows
  runId: string;
  children: RunRow[]; // loaded children (empty while loading)
}

export type Slot = { kind: "top"; index: number } | { kind: "child"; parent: Expansion; index: number };

export function displayCount(total: number, exps: Expansion[]): number {
  let n = total;
  for (const e of exps) n += e.children.length;
  return n;
}

/** Map a display row to a top-level row or a child; `exps` sorted by parentIndex. */
export function slotAt(v: number, exps: Expansion[]): Slot {
  let shift = 0;
  for (const e of exps) {
    const parentDisplay = e.parentIndex + shift;
    if (v <= parentDisplay) break;
    if (v <= parentDisplay + e.children.length) return { kind: "child", parent: e, index: v - parentDisplay - 1 };
    shift += e.children.length;
  }
  return { kind: "top", index: v - shift };
}

/** Display index of a top-level row. */
export function displayIndexOf(top: number, exps: Expansion[]): number {
  let shift = 0;
  for (const e of exps) {
    if (e.parentIndex >= top) break;
    shift += e.children.length;
  }
  return top + shift;
}

// ---------------------------------------------------------------- scrolling
// Fixed-height rows positioned by hand: the scroll height is capped (browsers
// stop at ~33M px; 1M rows x 28 px is 28M) and the scroll offset maps linearly
// onto the row range, so any row count scrolls.
export const MAX_SCROLL_PX = 8_000_000;

export function contentHeight(count: number, rowH: number): number {
  return Math.min(count * rowH, MAX_SCROLL_PX);
}

/** First visible row (fractional) for a scrollTop. */
export function firstRowAt(scrollTop: number, count: number, rowH: number, viewH: number): number {
  const h = contentHeight(count, rowH);
  const maxScroll = h - viewH;
  const maxFirst = Math.max(0, count - viewH / rowH);
  if (maxScroll <= 0) return 0;
  return Math.min(maxFirst, Math.max(0, (scrollTop / maxScroll) * maxFirst));
}

/** scrollTop that puts row `row` at the top. */
export function scrollTopFor(row: number, count: number, rowH: number, viewH: number): number {
  const h = contentHeight(count, rowH);
  const maxScroll = h - viewH;
  const maxFirst = Math.max(0, count - viewH / rowH);
  if (maxScroll <= 0 || maxFirst <= 0) return 0;
  return (Math.min(row, maxFirst) / maxFirst) * maxScroll;
}
