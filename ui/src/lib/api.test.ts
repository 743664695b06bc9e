import { beforeEach, describe, expect, it } from "vitest";
import { ApiError, earlyJson, request } from "./api";

const g = globalThis as any;
const KEY = 'POST /ui-api/v1/runs/window {"a":1}';

function answer(ok: boolean, status: number, text: string) {
  return { ok, status, statusText: ok ? "OK" : "Forbidden", text };
}

beforeEach(() => {
  g.window = g;
  g.document = { cookie: "" };
  g.__mf = {};
  g.__mfEarlyMs = 5000;
  g.__mfEarly = {};
});

describe("boot.ts's early answers", () => {
  it("earlyJson takes an answer that has arrived, once", () => {
    const a = answer(true, 200, '{"rows":[1]}');
    g.__mfEarly[KEY] = { at: performance.now(), answer: Promise.resolve(a), done: a };
    expect(earlyJson("POST", "/ui-api/v1/runs/window", { a: 1 })).toEqual({ rows: [1] });
    expect(g.__mf.earlyTaken).toEqual([KEY]);
    expect(earlyJson("POST", "/ui-api/v1/runs/window", { a: 1 })).toBeUndefined();
  });
  it("earlyJson leaves an answer still on its way, or a failed one, to request()", async () => {
    let arrive: (a: unknown) => void = () => undefined;
    g.__mfEarly[KEY] = { at: performance.now(), answer: new Promise((r) => (arrive = r)) };
    expect(earlyJson("POST", "/ui-api/v1/runs/window", { a: 1 })).toBeUndefined();
    expect(g.__mfEarly[KEY]).toBeDefined();
    const got = request("/ui-api/v1/runs/window", { method: "POST", body: { a: 1 } });
    arrive(answer(true, 200, '{"rows":[2]}'));
    expect(await got).toEqual({ rows: [2] });

    const denied = answer(false, 403, '{"error_code":"PERMISSION_DENIED","message":"no"}');
    g.__mfEarly[KEY] = { at: performance.now(), answer: Promise.resolve(denied), done: denied };
    expect(earlyJson("POST", "/ui-api/v1/runs/window", { a: 1 })).toBeUndefined();
    const err = await request("/ui-api/v1/runs/window", { method: "POST", body: { a: 1 } }).catch((e) => e);
    expect(err).toBeInstanceOf(ApiError);
    expect([err.status, err.code, err.message]).toEqual([403, "PERMISSION_DENIED", "no"]);
  });
  it("earlyJson ignores an answer older than the early window, and another request's", () => {
    const a = answer(true, 200, '{"rows":[3]}');
    g.__mfEarly[KEY] = { at: performance.now() - 6000, answer: Promise.resolve(a), done: a };
    expect(earlyJson("POST", "/ui-api/v1/runs/window", { a: 1 })).toBeUndefined();
    g.__mfEarly[KEY] = { at: performance.now(), answer: Promise.resolve(a), done: a };
    expect(earlyJson("POST", "/ui-api/v1/runs/window", { a: 2 })).toBeUndefined();
    expect(earlyJson("GET", "/ui-api/v1/runs/window", { a: 1 })).toBeUndefined();
  });
  it("a 401 drops the early answers not yet taken (they were asked without a session)", async () => {
    const denied = answer(false, 401, '{"error_code":"UNAUTHENTICATED","message":"sign in"}');
    const early = (k: string) => ({ at: performance.now(), answer: Promise.resolve(denied), done: denied });
    g.__mfEarly[KEY] = early(KEY);
    g.__mfEarly["GET /ui-api/v1/keys?experiment_ids=1 "] = early("keys");
    g.__mfEarlySeries = { at: performance.now(), run: "r", answer: Promise.resolve(null), taken: [] };
    g.location = { hash: "#/signin" }; // (already there: no redirect)
    const err = await request("/ui-api/v1/runs/window", { method: "POST", body: { a: 1 } }).catch((e) => e);
    expect(err.status).toBe(401);
    expect(g.__mfEarly).toEqual({});
    expect(g.__mfEarlySeries).toBeUndefined();
  });
});
