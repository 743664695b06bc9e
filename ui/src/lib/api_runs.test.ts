import { beforeEach, describe, expect, it, vi } from "vitest";

const calls: { path: string; body: any; signal?: AbortSignal; resolve: (v: unknown) => void; reject: (e: unknown) => void }[] = [];
vi.mock("./api", () => ({
  get: vi.fn(),
  post: (path: string, body: unknown, signal?: AbortSignal) =>
    new Promise((resolve, reject) => calls.push({ path, body, signal, resolve, reject })),
}));

import { downsample } from "./api_runs";

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
