import { expect, test } from "vitest";
import { fmtCount, fmtDuration } from "./format";

test("fmtCount groups thousands like en-US", () => {
  for (const n of [0, 7, 999, 1000, 12345, 999999, 1000000, 1234567890, -4321, 10 ** 15]) {
    expect(fmtCount(n)).toBe(n.toLocaleString("en-US"));
  }
  expect(fmtCount(null)).toBe("…");
  expect(fmtCount(undefined)).toBe("…");
  expect(fmtCount(NaN)).toBe("NaN");
});

test("fmtDuration picks a unit a narrow column can show", () => {
  const t0 = 1_700_000_000_000;
  expect(fmtDuration(t0, t0 + 12_300, "FINISHED")).toBe("12.3 s");
  expect(fmtDuration(t0, t0 + 90_000, "FINISHED")).toBe("1.5 min");
  expect(fmtDuration(t0, t0 + 36 * 3600_000, "FINISHED")).toBe("36.0 h");
  expect(fmtDuration(t0, t0 + 1119 * 86400_000, "FINISHED")).toBe("1119.0 d");
  expect(fmtDuration(t0, null, "RUNNING", t0 + 3 * 86400_000)).toBe("3.0 d");
  expect(fmtDuration(t0, null, "FINISHED")).toBe("");
});
