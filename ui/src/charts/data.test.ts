import { describe, expect, it } from "vitest";
import { decodeOverlay, SeriesJson } from "../lib/api_runs";
import { overlayBuckets, overlayColumns } from "../pages/compare/overlay";
import { bucketsFor, chartColumns, fmtTick, ema, hasIsolated, logGaps, msToStep, parseRange, plotColumn, stepOfX, stepToMs, toBuckets, xOfStep, zoomRange } from "./data";
import bucketCases from "./buckets_cases.json";

function series(over: Partial<SeriesJson> = {}): SeriesJson {
  return {
    run_id: "r1",
    key: "loss",
    step_lo: 0,
    step_hi: 99,
    bucket: [0, 1, 2, 3],
    count: [25, 25, 25, 25],
    step_first: [0, 25, 50, 75],
    step_last: [24, 49, 74, 99],
    nan_count: [0, 1, 0, 0],
    inf_count: [0, 0, 2, 0],
    min: [1, 0.5, "-inf", 0.1],
    max: [2, 90, "inf", 0.2],
    avg: [1.5, 0.7, 0.3, 0.15],
    last: [1.2, "nan", 0.3, 0.12],
    first_point: { step: 0, timestamp: 1_000_000, value: 2 },
    last_point: { step: 99, timestamp: 1_099_000, value: 0.12 },
    ...over,
  };
}

describe("toBuckets", () => {
  it("parses NaN/Inf strings and sums the non-finite counts", () => {
    const b = toBuckets(series());
    expect(b.n).toBe(4);
    expect(Number.isNaN(b.last[1])).toBe(true);
    expect(b.min[2]).toBe(-Infinity);
    expect(b.max[2]).toBe(Infinity);
    expect(b.nanCount).toBe(1);
    expect(b.infCount).toBe(2);
    expect(b.anchors).toEqual([
      [0, 1_000_000],
      [99, 1_099_000],
    ]);
  });
});

describe("chartColumns", () => {
  it("keeps every bucket's max: a one-point spike reaches the band's top", () => {
    const c = chartColumns(toBuckets(series()), { x: "step", line: "last", log: false, smoothing: 0, runStartMs: 0 });
    expect(c.data[0]).toEqual([24, 49, 74, 99]); // x = each bucket's last step
    expect(c.data[2]).toEqual([2, 90, null, 0.2]); // max column: the spike (90) is kept, Inf is not drawable
    expect(c.data[3]).toEqual([1.2, null, 0.3, 0.12]); // NaN last -> gap
    expect(c.data.length).toBe(4);
  });
  it("uses the mean and adds a smoothed line", () => {
    const c = chartColumns(toBuckets(series()), { x: "step", line: "mean", log: false, smoothing: 0.5, runStartMs: 0 });
    expect(c.data[3]).toEqual([1.5, 0.7, 0.3, 0.15]);
    expect(c.smoothed).toBe(true);
    expect(c.data.length).toBe(5);
    expect(c.data[4][0]).toBeCloseTo(1.5); // debiased: the first value is itself
  });
  it("counts what a log axis hides and finds points no segment would draw", () => {
    expect(logGaps([1, 0, -1, 2, NaN, 3])).toEqual({ hidden: 2, drawable: 3, isolated: true });
    expect(logGaps([-1, -2, 0])).toEqual({ hidden: 3, drawable: 0, isolated: false });
    expect(logGaps([5])).toEqual({ hidden: 0, drawable: 1, isolated: true });
    expect(logGaps([1, 2, 3])).toEqual({ hidden: 0, drawable: 3, isolated: false });
  });
  it("drops values <= 0 on a log axis", () => {
    expect(plotColumn([1, 0, -1, 2, NaN, Infinity], true)).toEqual([1, null, null, 2, null, null]);
    expect(plotColumn([1, 0, -1], false)).toEqual([1, 0, -1]);
  });
  it("maps steps to wall and relative seconds through the exact end points", () => {
    const c = chartColumns(toBuckets(series()), { x: "rel", line: "last", log: false, smoothing: 0, runStartMs: 990_000 });
    expect(c.data[0][0]).toBeCloseTo((1_000_000 + 24 * 1000 - 990_000) / 1000);
    const w = chartColumns(toBuckets(series()), { x: "wall", line: "last", log: false, smoothing: 0, runStartMs: 0 });
    expect(w.data[0][3]).toBeCloseTo(1_099);
  });
});

describe("ema", () => {
  it("is the identity at weight 0", () => {
    expect(Array.from(ema([1, 2, 3], 0))).toEqual([1, 2, 3]);
  });
  it("debiases and skips non-finite values", () => {
    const e = ema([10, NaN, 10, 0], 0.5);
    expect(e[0]).toBeCloseTo(10);
    expect(Number.isNaN(e[1])).toBe(true);
    expect(e[2]).toBeCloseTo(10);
    // acc: 5, 7.5, 3.75; debias 1 - 0.5^3 = 0.875
    expect(e[3]).toBeCloseTo(3.75 / 0.875);
  });
  it("of a constant is the constant", () => {
    for (const v of ema([3, 3, 3, 3, 3], 0.9)) expect(v).toBeCloseTo(3);
  });
});

describe("step <-> time", () => {
  const a: [number, number][] = [
    [0, 1000],
    [100, 11000],
  ];
  it("interpolates and inverts", () => {
    expect(stepToMs(50, a)).toBe(6000);
    expect(msToStep(6000, a)).toBe(50);
    for (const mode of ["step", "wall", "rel"] as const) expect(stepOfX(xOfStep(37, mode, a, 500), mode, a, 500)).toBeCloseTo(37);
  });
  it("handles a single point", () => {
    expect(stepToMs(5, [[5, 42]])).toBe(42);
  });
});

describe("fmtTick", () => {
  it("keeps ticks short", () => {
    expect(fmtTick(0.0001)).toBe("1e-4");
    expect(fmtTick(2500000)).toBe("2.5e6");
    expect(fmtTick(0.123456)).toBe("0.1235");
    expect(fmtTick(0)).toBe("0");
  });
});

describe("ranges and bucket counts", () => {
  it("parses only well-formed ranges", () => {
    expect(parseRange("10:20")).toEqual([10, 20]);
    expect(parseRange("-5:7")).toEqual([-5, 7]);
    expect(parseRange("20:10")).toBeNull();
    expect(parseRange("a:b")).toBeNull();
    expect(parseRange(null)).toBeNull();
  });
  it("zooms to whole steps, at least one step wide", () => {
    expect(zoomRange(10.2, 19.7)).toEqual([10, 20]);
    expect(zoomRange(5.1, 5.2)).toEqual([5, 6]);
    expect(zoomRange(NaN, 3)).toBeNull();
  });
  it("asks one bucket per pixel, or the nearby count the rollup answers (cases shared with the server)", () => {
    // query/_rollup_read.py buckets_for_px picks the same counts for boot.ts's early request
    for (const c of bucketCases as { px: number; span?: number; lo?: number; buckets: number; why: string }[])
      expect([c.why, bucketsFor(c.px, c.span, c.lo ?? 0)]).toEqual([c.why, c.buckets]);
  });
  it("asks fewer buckets per run for many runs", () => {
    expect(overlayBuckets(1200, 1)).toBe(1200);
    expect(overlayBuckets(1200, 1000)).toBe(250);
    expect(overlayBuckets(1200, 100_000)).toBe(50);
  });
});

function packOverlay(runIds: string[], B: number, cols: number[], x: number[], blocks: number[][][]): ArrayBuffer {
  const K = cols.length;
  const header = new TextEncoder().encode(JSON.stringify({ run_ids: runIds, buckets: B, columns: K, step_lo: 0, step_hi: 9 }));
  const off = (4 + header.length + 7) & ~7;
  const buf = new ArrayBuffer(off + 8 * K * (2 + 4 * runIds.length));
  new DataView(buf).setUint32(0, header.length, true);
  new Uint8Array(buf, 4, header.length).set(header);
  const f = new Float64Array(buf, off);
  f.set(cols, 0);
  f.set(x, K);
  blocks.forEach((c4, i) => c4.forEach((col, j) => f.set(col, K * (2 + 4 * i + j))));
  return buf;
}

describe("overlay binary", () => {
  it("decodes the server's layout (only buckets some run has are sent)", () => {
    const N = NaN;
    const buf = packOverlay(
      ["a", "b"],
      3,
      [0, 2],
      [4, 9],
      [
        [
          [1, 3],
          [1, 3],
          [0, 2],
          [2, 4],
        ],
        [
          [N, 5],
          [N, 5],
          [N, 5],
          [N, 5],
        ],
      ],
    );
    const d = decodeOverlay(buf);
    expect(d.runIds).toEqual(["a", "b"]);
    expect(d.buckets).toBe(3);
    expect(Array.from(d.bucket)).toEqual([0, 2]);
    expect(Array.from(d.last[0])).toEqual([1, 3]);
    expect(Array.from(d.max[1])).toEqual([N, 5]);
    const { data, keep } = overlayColumns(d, "last", false, 0);
    expect(keep).toBe(2);
    expect(data[0]).toEqual([4, 9]);
    expect(data[1]).toEqual([1, 3]);
    expect(data[2]).toEqual([null, 5]);
  });
});

describe("compare axes", async () => {
  const { numericAxis, paramAxis, varyingParams, niceStep } = await import("../pages/compare/axes");
  it("picks nice tick steps", () => {
    expect(niceStep(0.23)).toBeCloseTo(0.2);
    expect(niceStep(4)).toBe(5);
    expect(niceStep(1200)).toBe(1000);
  });
  it("labels a linear axis at round values, zero exactly", () => {
    const a = numericAxis("m", "m", [-0.99999, 0.99999, null]);
    expect(a.ticks.map((t) => t.label)).toEqual(["-0.5", "0", "0.5"]);
    expect(a.pos).toEqual([0, 1, null]);
  });
  it("uses a log axis over >= 2 decades of positive values", () => {
    const a = numericAxis("lr", "lr", [0.001, 0.01, 0.1]);
    expect(a.kind).toBe("log");
    expect(a.pos[1]).toBeCloseTo(0.5);
  });
  it("treats non-numeric params as categories and missing values as null", () => {
    const a = paramAxis("opt", ["sgd", "adam", ""], [true, true, false]);
    expect(a.kind).toBe("cat");
    expect(a.cats).toEqual(["adam", "sgd"]);
    expect(a.pos).toEqual([1, 0, null]);
  });
  it("keeps only params that vary", () => {
    expect(
      varyingParams({
        same: { values: ["1", "1"], present: [true, true] },
        diff: { values: ["1", "2"], present: [true, true] },
        partly: { values: ["1", ""], present: [true, false] },
      }),
    ).toEqual(["diff", "partly"]);
  });
});

describe("overlay request plan", async () => {
  const { overlayPlan, refineTo } = await import("../pages/compare/overlay");
  const d = (buckets: number, lo: number, hi: number) => ({ buckets, stepLo: lo, stepHi: hi }) as any;
  it("starts coarse when the span is unknown", () => {
    expect(overlayPlan(1300, null)).toEqual({ first: 64, second: null });
  });
  it("refines after the coarse answer when the span allows more", () => {
    expect(refineTo(1300, d(64, 0, 99_999))).toBe(1300); // raw: 77 steps per bucket
    expect(refineTo(250, d(64, 0, 999_999))).toBe(250); // 4,000 steps per bucket: rollup
    expect(refineTo(1300, d(64, 0, 9))).toBeNull(); // 10 steps: all shown already
    expect(refineTo(1300, d(64, 0, 999_999))).toBe(976); // lowered to whole 1,024-step buckets
  });
  it("plans a zoom from its known span", () => {
    expect(overlayPlan(400, 1_000_000)).toEqual({ first: 400, second: null });
    expect(overlayPlan(400, 300_000)).toEqual({ first: 292, second: null });
    expect(overlayPlan(1300, 100_000)).toEqual({ first: 64, second: 1300 });
    expect(overlayPlan(1300, 500)).toEqual({ first: 500, second: null });
  });
});

it("hasIsolated: a point with no drawable neighbour, on a linear or a log axis", () => {
  expect(hasIsolated([3], false)).toBe(true); // a metric logged once
  expect(hasIsolated([1, 2, 3], false)).toBe(false);
  expect(hasIsolated([1, NaN, 3, 4], false)).toBe(true);
  expect(hasIsolated([NaN, NaN], false)).toBe(false);
  expect(hasIsolated([1, -1, 2, 3], false)).toBe(false); // drawable on a linear axis
  expect(hasIsolated([1, -1, 2, 3], true)).toBe(true); // 1 is alone on a log axis
});
