import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { createHold, FRAME_WAIT_MS } from "./hold";

describe("createHold", () => {
  let frames: (() => void)[];
  beforeEach(() => {
    vi.useFakeTimers();
    frames = [];
    vi.stubGlobal("requestAnimationFrame", (cb: () => void) => frames.push(cb));
  });
  afterEach(() => {
    vi.useRealTimers();
    vi.unstubAllGlobals();
  });
  const frame = () => frames.splice(0).forEach((cb) => cb());

  it("keeps updates until released, then runs them in order after the frame is painted", () => {
    const h = createHold();
    const seen: string[] = [];
    h.later(() => seen.push("a"));
    h.later(() => seen.push("b"));
    vi.runAllTimers();
    expect(seen).toEqual([]);
    h.release();
    expect(seen).toEqual([]); // not inside the frame that shows the main content
    frame();
    expect(seen).toEqual([]);
    vi.advanceTimersByTime(0);
    expect(seen).toEqual(["a", "b"]);
    vi.runAllTimers(); // the frame's fallback timer runs nothing twice
    expect(seen).toEqual(["a", "b"]);
  });

  it("flushes without a frame (a hidden tab runs none)", () => {
    const h = createHold();
    const seen: string[] = [];
    h.later(() => seen.push("a"));
    h.release();
    vi.advanceTimersByTime(FRAME_WAIT_MS - 1);
    expect(seen).toEqual([]);
    vi.advanceTimersByTime(1);
    vi.runOnlyPendingTimers(); // the flush, queued by the fallback
    expect(seen).toEqual(["a"]);
  });

  it("keeps the order of updates that come between the release and the flush", () => {
    const h = createHold();
    const seen: string[] = [];
    h.later(() => seen.push("first"));
    h.release();
    h.later(() => seen.push("second"));
    expect(seen).toEqual([]);
    frame();
    vi.runAllTimers();
    expect(seen).toEqual(["first", "second"]);
  });

  it("runs updates at once after the flush, and releases once", () => {
    const h = createHold();
    h.release();
    h.release();
    expect(frames.length).toBe(1);
    frame();
    vi.runAllTimers();
    const seen: string[] = [];
    h.later(() => seen.push("now"));
    expect(seen).toEqual(["now"]);
  });
});
