import { describe, expect, it } from "vitest";
import { completionAt, fieldText, openQuote, quoteKey, rankKeys, suggestions } from "./filter";

const keys = { metrics: ["acc", "loss", "val/loss", "weird key"], params: ["lr", "layers"], tags: ["team"] };

describe("filter autocomplete", () => {
  it("completes a metric key after its prefix", () => {
    const t = "params.lr = '0.1' AND metrics.lo";
    const c = completionAt(t, t.length)!;
    expect(c.kind).toBe("metrics");
    expect(c.partial).toBe("lo");
    expect(t.slice(c.start, c.end)).toBe("metrics.lo");
    expect(suggestions(c, keys).map((s) => s.label)).toEqual(["metrics.loss", "metrics.val/loss"]);
  });
  it("accepts prefix aliases", () => {
    expect(completionAt("param.l", 7)!.kind).toBe("params");
    expect(completionAt("tag.", 4)!.kind).toBe("tags");
    expect(completionAt("attr.st", 7)!.kind).toBe("attributes");
  });
  it("suggests prefixes for a bare word and nothing for keywords", () => {
    const c = completionAt("me", 2)!;
    expect(c.kind).toBeNull();
    expect(suggestions(c, keys).map((s) => s.insert)).toEqual(["metrics."]);
    expect(completionAt("metrics.a > 1 AND", 17)).toBeNull();
    expect(completionAt("metrics.a > 1 AND p", 19)!.kind).toBeNull();
    expect(completionAt("(ta", 3)!.partial).toBe("ta");
    // after a complete comparison only AND/OR can follow: no field suggestions
    expect(completionAt("params.lr = '0.1' ", 18)).toBeNull();
    expect(completionAt("metrics.a > 1 an", 16)).toBeNull();
  });
  it("does not complete inside string values or right after an operator", () => {
    const t = "tags.team = 'metrics.lo";
    expect(completionAt(t, t.length)).toBeNull();
    expect(completionAt("metrics.loss < ", 15)).toBeNull();
  });
  it("completes inside backticks and quotes keys that need it", () => {
    const t = "metrics.`weird k";
    const c = completionAt(t, t.length)!;
    expect(c.kind).toBe("metrics");
    expect(c.partial).toBe("weird k");
    expect(suggestions(c, keys)[0].insert).toBe("metrics.`weird key` ");
    expect(quoteKey("val/loss")).toBe("val/loss");
    expect(quoteKey("a`b c")).toBe("`a``b c`");
    expect(fieldText("params", "my.key")).toBe("params.my.key");
  });
  it("tracks open quotes with doubled and escaped quotes", () => {
    expect(openQuote("a = 'it''s", 10)).toBe("'");
    expect(openQuote("a = 'it''s'", 11)).toBe("");
    expect(openQuote('a = "x\\"y', 9)).toBe('"');
  });
  it("ranks prefix matches before substring matches, case-insensitively", () => {
    expect(rankKeys(["xloss", "Loss", "lossy", "other"], "LOSS", 10)).toEqual(["Loss", "lossy", "xloss"]);
    expect(rankKeys(["a", "b", "c"], "", 2)).toEqual(["a", "b"]);
  });
});
