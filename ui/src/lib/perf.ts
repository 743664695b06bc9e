// Performance marks measured from the user action to the frame that shows the result.
// start(name) marks `${name}:start`; endAfterFrame(name) waits two animation frames
// (the result is painted) and then measures `name` from that mark. The benchmark
// (loadtests/ui_bench.py) reads performance.getEntriesByName(name, "measure").

const pending = new Set<string>();

export function start(name: string): void {
  performance.clearMarks(name + ":start");
  performance.mark(name + ":start");
  pending.add(name);
}

/** Start `name` at navigation start (time 0): a cold load measured from the user's request. */
export function startAtNavigation(name: string): void {
  performance.clearMarks(name + ":start");
  performance.mark(name + ":start", { startTime: 0 });
  pending.add(name);
}

export function isPending(name: string): boolean {
  return pending.has(name);
}

export function endAfterFrame(name: string): Promise<number | null> {
  if (!pending.has(name)) return Promise.resolve(null);
  pending.delete(name);
  return new Promise((resolve) => {
    requestAnimationFrame(() =>
      requestAnimationFrame(() => {
        try {
          const m = performance.measure(name, name + ":start");
          resolve(m ? m.duration : null);
        } catch {
          resolve(null);
        }
      }),
    );
  });
}

/** Measure a synchronous piece of work that ends in a render (e.g. picker_filter). */
export function measureSync(name: string, fn: () => void): void {
  start(name);
  fn();
  void endAfterFrame(name);
}
