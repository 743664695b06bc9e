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
});
