import { beforeEach, describe, expect, it, vi } from "vitest";

const calls: { path: string; body: any; signal?: AbortSignal; resolve: (v: unknown) => void; reject: (e: unknown) => void }[] = [];
vi.mock("./api", () => ({
  get: vi.fn(),
  post: (path: string, body: unknown, signal?: AbortSignal) =>
    new Promise((resolve, reject) => calls.push({ path, body, signal, resolve, reject })),
}));

import { downsample, EARLY_SERIES_WAIT_MS } from "./api_runs";

const series = (key: string) => ({ run_id: "r1", key, bucket: [0], min: [1], max: [2] });
const tick = () => new Promise((r) => setTimeout(r, 0));

describe("downsample batching", () => {
  beforeEach(() => {
    calls.length = 0;
  });

  it("sends a request alone exactly as it was made", async () => {
    const req = { run_ids: ["r1"], key: "loss", buckets: 300, step_min: null, step_max: null, ends: false };
    const p = downsample(req);
    await tick();
    expect(calls).toHaveLength(1);
    expect(JSON.stringify(calls[0].body)).toBe(JSON.stringify(req));
    calls[0].resolve({ series: [series("loss")] });
    expect((await p).map((s) => s.key)).toEqual(["loss"]);
  });

  it("sends the keys of one task's requests together and gives each its own series", async () => {
    const base = { run_ids: ["r1"], buckets: 300, ends: false };
    const a = downsample({ ...base, key: "a" });
    const b = downsample({ ...base, key: "b" });
    const other = downsample({ ...base, buckets: 200, key: "c" }); // another bucket count: its own request
    await tick();
    expect(calls).toHaveLength(2);
    expect(calls[0].body).toEqual({ run_ids: ["r1"], buckets: 300, ends: false, keys: ["a", "b"] });
    expect(calls[0].body.key).toBeUndefined();
    expect(calls[1].body.key).toBe("c");
    calls[0].resolve({ series: [series("b"), series("a")] });
    calls[1].resolve({ series: [series("c")] });
    expect((await a).map((s) => s.key)).toEqual(["a"]);
    expect((await b).map((s) => s.key)).toEqual(["b"]);
    expect((await other).map((s) => s.key)).toEqual(["c"]);
  });

  it("rejects an aborted caller, and cancels the request once every caller has aborted", async () => {
    const base = { run_ids: ["r1"], buckets: 300 };
    const ca = new AbortController(), cb = new AbortController();
    const a = downsample({ ...base, key: "a" }, ca.signal);
    const b = downsample({ ...base, key: "b" }, cb.signal);
    await tick();
    ca.abort();
    await expect(a).rejects.toMatchObject({ name: "AbortError" });
    expect(calls[0].signal!.aborted).toBe(false);
    cb.abort();
    await expect(b).rejects.toMatchObject({ name: "AbortError" });
    expect(calls[0].signal!.aborted).toBe(true);
  });

  it("passes an error to every caller", async () => {
    const a = downsample({ run_ids: ["r1"], key: "a", buckets: 10 });
    const b = downsample({ run_ids: ["r1"], key: "b", buckets: 10 });
    await tick();
    calls[0].reject(new Error("boom"));
    await expect(a).rejects.toThrow("boom");
    await expect(b).rejects.toThrow("boom");
  });
});

describe("downsample: boot.ts's early answer", () => {
  const g = globalThis as any;
  const early = (buckets: number, keys: string[], res: Promise<unknown>) => {
    g.__mfEarlyMs = 5000;
    g.__mfEarlySeries = { at: performance.now(), run: "r1", taken: [], answer: res.then((series) => (series ? { series, buckets: Object.fromEntries(keys.map((k) => [k, buckets])) } : null)) };
  };
  const req = (key: string, buckets: number) => ({ run_ids: ["r1"], key, buckets, step_min: null, step_max: null, ends: false });
  beforeEach(() => {
    calls.length = 0;
    delete g.__mfEarlySeries;
  });

  it("gives each chart its key of the early answer, once, without asking the server", async () => {
    early(377, ["a", "b"], Promise.resolve([series("a"), series("b")]));
    expect((await downsample(req("a", 380))).map((s) => s.key)).toEqual(["a"]);
    expect((await downsample(req("b", 377))).map((s) => s.key)).toEqual(["b"]);
    await tick();
    expect(calls).toHaveLength(0);
    const again = downsample(req("a", 380)); // taken once: a second request is the chart's own
    await tick();
    expect(calls).toHaveLength(1);
    calls[0].resolve({ series: [series("a")] });
    await again;
  });

  it("is not used for another bucket count, a zoom, a time axis or another run", async () => {
    early(100, ["a"], Promise.resolve([series("a")]));
    const asks = [
      downsample(req("a", 201)), // 100 < 201 / 2
      downsample({ ...req("a", 100), step_min: 5, step_max: 50 }),
      downsample({ ...req("a", 100), ends: undefined }),
      downsample({ ...req("a", 100), run_ids: ["r2"] }),
    ];
    await tick();
    expect(calls).toHaveLength(4);
    calls.forEach((c) => c.resolve({ series: [] }));
    await Promise.all(asks);
  });

  it("waits for boot.ts to learn the run, and asks the server when boot.ts asked nothing", async () => {
    let learn: (v: unknown) => void = () => undefined;
    g.__mfEarlyMs = 5000;
    g.__mfEarlySeries = { at: performance.now(), run: "r1", taken: [], answer: new Promise((r) => (learn = r)) };
    const a = downsample(req("a", 300));
    const b = downsample(req("b", 300));
    await tick();
    expect(calls).toHaveLength(0);
    learn({ series: [], buckets: {} });
    await tick();
    expect(calls).toHaveLength(1); // the two charts' own requests, still as one
    expect(calls[0].body.keys).toEqual(["a", "b"]);
    calls[0].resolve({ series: [series("a"), series("b")] });
    expect((await a).map((s) => s.key)).toEqual(["a"]);
    expect((await b).map((s) => s.key)).toEqual(["b"]);
  });

  it("leaves the early series to the next request when the caller was cancelled", async () => {
    let answer: (v: unknown) => void = () => undefined;
    early(300, ["a"], Promise.resolve([series("a")]));
    g.__mfEarlySeries.answer = new Promise((r) => (answer = r)).then(() => ({ series: [series("a")], buckets: { a: 300 } }));
    const ac = new AbortController();
    const first = downsample(req("a", 300), ac.signal);
    ac.abort();
    answer(null);
    await expect(first).rejects.toMatchObject({ name: "AbortError" });
    expect((await downsample(req("a", 300))).map((s) => s.key)).toEqual(["a"]); // still there
    await tick();
    expect(calls).toHaveLength(0);
  });

  it("stops waiting for an answer that does not come", async () => {
    g.__mfEarlySeries = { at: performance.now() - EARLY_SERIES_WAIT_MS + 20, run: "r1", taken: [], answer: new Promise(() => undefined) };
    const p = downsample(req("a", 300));
    await new Promise((r) => setTimeout(r, 60));
    expect(calls).toHaveLength(1);
    calls[0].resolve({ series: [series("a")] });
    expect((await p).map((s) => s.key)).toEqual(["a"]);
  });

  it("asks the server when the early request failed", async () => {
    early(300, ["a"], Promise.resolve(null));
    const p = downsample(req("a", 300));
    await tick();
    expect(calls).toHaveLength(1);
    expect(calls[0].body.key).toBe("a");
    calls[0].resolve({ series: [series("a")] });
    expect((await p).map((s) => s.key)).toEqual(["a"]);
  });
});
