import { expect, test } from "vitest";
import { fmtCount } from "./format";

test("fmtCount groups thousands like en-US", () => {
  for (const n of [0, 7, 999, 1000, 12345, 999999, 1000000, 1234567890, -4321, 10 ** 15]) {
    expect(fmtCount(n)).toBe(n.toLocaleString("en-US"));
  }
  expect(fmtCount(null)).toBe("…");
  expect(fmtCount(undefined)).toBe("…");
  expect(fmtCount(NaN)).toBe("NaN");
});
