import { describe, expect, it } from "vitest";
import { buildHash, joinList, parseHash, splitList } from "./url";

describe("hash routes", () => {
  it("splits path and query", () => {
    const r = parseHash("#/experiments/12/runs/abc?q=metrics.loss%20%3C%201&sort=metrics.loss");
    expect(r.parts).toEqual(["experiments", "12", "runs", "abc"]);
    expect(r.params.get("q")).toBe("metrics.loss < 1");
    expect(r.params.get("sort")).toBe("metrics.loss");
  });
  it("treats an empty hash as the experiments list", () => {
    expect(parseHash("").parts).toEqual([]);
    expect(parseHash("#").path).toBe("/");
  });
  it("decodes path parts and survives bad escapes", () => {
    expect(parseHash("#/models/my%20model").parts).toEqual(["models", "my model"]);
    expect(parseHash("#/models/100%").parts).toEqual(["models", "100%"]);
  });
  it("round-trips state through buildHash", () => {
    const h = buildHash("/runs", { e: "1,2", q: "params.lr = '0.1' AND tags.x LIKE '%a&b%'", empty: "" });
    const r = parseHash(h);
    expect(r.path).toBe("/runs");
    expect(r.params.get("q")).toBe("params.lr = '0.1' AND tags.x LIKE '%a&b%'");
    expect(r.params.has("empty")).toBe(false);
  });
  it("keeps commas and percent signs inside list items", () => {
    const items = ["metrics.a,b", "params.50%", "tags.plain"];
    const joined = joinList(items);
    expect(joined.split(",").length).toBe(3);
    expect(splitList(joined)).toEqual(items);
    const viaUrl = parseHash(buildHash("/x", { cols: joined })).params.get("cols");
    expect(splitList(viaUrl)).toEqual(items);
  });
  it("writes readable links", () => {
    const h = buildHash("/runs", { e: "1,2", cols: joinList(["metrics.val/loss", "params.a:b"]), q: "a,b" });
    expect(h).toBe("#/runs?e=1,2&cols=metrics.val/loss,params.a:b&q=a,b");
    expect(parseHash(h).params.get("q")).toBe("a,b");
  });
});
