import { describe, expect, it } from "vitest";
import { contentHeight, displayCount, displayIndexOf, Expansion, firstRowAt, MAX_SCROLL_PX, RunRow, scrollTopFor, slotAt, WindowAnswer, WindowCache } from "./cache";

const TOTAL = 1_000_000;
function row(i: number): RunRow {
  return { run_id: "r" + i, experiment_id: "1", run_name: "run-" + i, user_id: "u", status: "FINISHED", start_time: i, end_time: null, lifecycle_stage: "active", metrics: {}, params: {}, tags: {}, parent_run_id: "" };
}
function fakeServer() {
  const calls: { offset: number; limit: number; withTotal: boolean }[] = [];
  const fetcher = async (offset: number, limit: number, withTotal: boolean): Promise<WindowAnswer> => {
    calls.push({ offset, limit, withTotal });
    const rows = [];
    for (let i = offset; i < Math.min(TOTAL, offset + limit); i++) rows.push(row(i));
    return { offset, total: withTotal ? TOTAL : null, rows };
  };
  return { calls, fetcher };
}

describe("WindowCache", () => {
  it("fetches only the blocks of the asked range, contiguous ones in one request", async () => {
    const s = fakeServer();
    const c = new WindowCache(s.fetcher, 100);
    await c.ensure(500_030, 500_170);
    expect(s.calls).toEqual([{ offset: 500_000, limit: 200, withTotal: true }]);
    expect(c.total).toBe(TOTAL);
    expect(c.get(500_123)!.run_id).toBe("r500123");
    expect(c.covers(500_000, 500_200)).toBe(true);
    expect(c.covers(499_999, 500_010)).toBe(false);
    await c.ensure(500_050, 500_250); // only block 5002 is missing now
    expect(s.calls.slice(1)).toEqual([{ offset: 500_200, limit: 100, withTotal: false }]);
  });
  it("shows a replaced cache's rows until its own arrive, and still asks for them", async () => {
    const s = fakeServer();
    const old = new WindowCache(s.fetcher, 100);
    await old.ensure(0, 200);
    let arrive: (a: WindowAnswer) => void = () => undefined;
    const withCols = new WindowCache(
      (offset, limit) => new Promise<WindowAnswer>((r) => (arrive = r)).then((a) => ({ ...a, offset, rows: a.rows.slice(0, limit) })),
      100,
    );
    withCols.standInFor(old);
    old.dispose();
    expect(withCols.get(7)!.run_name).toBe("run-7"); // the old row, on screen meanwhile
    expect(withCols.has(7)).toBe(false);
    expect(withCols.covers(0, 100)).toBe(false);
    const loading = withCols.ensure(0, 100); // asked for all the same
    const rows = [...Array(100).keys()].map((i) => ({ ...row(i), metrics: { loss: i / 10 } }));
    arrive({ offset: 0, total: TOTAL, rows });
    await loading;
    expect(withCols.get(7)!.metrics).toEqual({ loss: 0.7 });
    expect(withCols.covers(0, 100)).toBe(true);
    expect(withCols.get(150)).toBeUndefined(); // the stand-in went with the first rows
    expect(old.get(150)!.run_name).toBe("run-150"); // (which the old cache holds)
    const next = new WindowCache(s.fetcher, 100); // a third shape before the second had rows
    const third = new WindowCache(s.fetcher, 100);
    next.standInFor(withCols);
    third.standInFor(next);
    expect(third.get(7)!.metrics).toEqual({ loss: 0.7 });
    expect(new WindowCache(s.fetcher, 50).get(7)).toBeUndefined();
  });
  it("holds seeded rows as fetched ones: no request for them, the next block asked for", async () => {
    const s = fakeServer();
    const c = new WindowCache(s.fetcher, 100);
    const first = await s.fetcher(0, 100, true);
    s.calls.length = 0;
    c.seed(0, first);
    expect(c.total).toBe(TOTAL);
    expect(c.get(42)!.run_id).toBe("r42");
    expect(c.covers(0, 100)).toBe(true);
    await c.ensure(0, 40);
    expect(s.calls).toEqual([]);
    await c.ensure(90, 130);
    expect(s.calls).toEqual([{ offset: 100, limit: 100, withTotal: false }]);
  });
  it("shares an in-flight request instead of sending it twice", async () => {
    const s = fakeServer();
    const c = new WindowCache(s.fetcher, 100);
    await Promise.all([c.ensure(0, 50), c.ensure(10, 60)]);
    expect(s.calls.length).toBe(1);
  });
  it("evicts the least recently used blocks", async () => {
    const s = fakeServer();
    const c = new WindowCache(s.fetcher, 100, 3);
    for (const b of [0, 1, 2]) await c.ensure(b * 100, b * 100 + 10);
    await c.ensure(0, 10); // touch block 0
    await c.ensure(900, 910);
    expect(c.has(0)).toBe(true);
    expect(c.has(100)).toBe(false);
  });
  it("drops answers after dispose (a new search shape)", async () => {
    let release!: (a: WindowAnswer) => void;
    const c = new WindowCache(() => new Promise<WindowAnswer>((r) => (release = r)), 100);
    const p = c.ensure(0, 10);
    c.dispose();
    release({ offset: 0, total: 5, rows: [row(0)] });
    await p;
    expect(c.total).toBeNull();
    expect(c.get(0)).toBeUndefined();
  });
  it("keeps a server error for the page to show", async () => {
    const c = new WindowCache(async () => { throw Object.assign(new Error("bad filter"), { position: 3 }); }, 100);
    await c.ensure(0, 10);
    expect((c.error as Error).message).toBe("bad filter");
  });
});

describe("nesting", () => {
  const exps: Expansion[] = [
    { parentIndex: 2, runId: "p2", children: [row(100), row(101)] },
    { parentIndex: 5, runId: "p5", children: [row(200)] },
  ];
  it("maps display rows to parents and children", () => {
    expect(displayCount(10, exps)).toBe(13);
    const kinds = Array.from({ length: 13 }, (_, v) => {
      const s = slotAt(v, exps);
      return s.kind === "top" ? "t" + s.index : "c" + s.parent.runId + ":" + s.index;
    });
    expect(kinds).toEqual(["t0", "t1", "t2", "cp2:0", "cp2:1", "t3", "t4", "t5", "cp5:0", "t6", "t7", "t8", "t9"]);
    expect(displayIndexOf(6, exps)).toBe(9);
    expect(displayIndexOf(2, exps)).toBe(2);
  });
});

describe("scroll mapping", () => {
  it("is exact below the height cap", () => {
    expect(contentHeight(1000, 28)).toBe(28_000);
    expect(firstRowAt(280, 1000, 28, 560)).toBeCloseTo(10);
    expect(scrollTopFor(10, 1000, 28, 560)).toBeCloseTo(280);
  });
  it("maps the whole row range onto the capped height", () => {
    const n = 10_000_000;
    const h = contentHeight(n, 28);
    expect(h).toBe(MAX_SCROLL_PX);
    const top = scrollTopFor(5_000_000, n, 28, 800);
    expect(Math.round(firstRowAt(top, n, 28, 800))).toBe(5_000_000);
    expect(firstRowAt(h - 800, n, 28, 800)).toBeCloseTo(n - 800 / 28);
    expect(firstRowAt(0, n, 28, 800)).toBe(0);
  });
});
