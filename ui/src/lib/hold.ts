// Updates that only decorate a page (an experiment's name, the keys behind the column
// picker and the default columns) wait while its main content loads. Applied as their
// answers came, their renders ran between the main answer and the frame that shows it:
// on a cold load of the runs table they arrive together (boot.ts asks for all three).
import { useEffect, useRef } from "preact/hooks";

/** Longest a held update waits, in case the main content never comes (an error, a hang). */
export const HOLD_MAX_MS = 1000;

/** The flush's wait for the next frame when none comes (a hidden tab runs no frames). */
export const FRAME_WAIT_MS = 100;

export interface Hold {
  /** run `fn` now if released (and what waited has run), else after the release */
  later(fn: () => void): void;
  /** the main content is on screen: run what waits once this frame has been painted */
  release(): void;
}

export function createHold(): Hold {
  let released = false;
  let flushed = false;
  const queue: (() => void)[] = [];
  const flush = () => {
    flushed = true;
    for (const fn of queue.splice(0)) fn();
  };
  return {
    later(fn) {
      if (flushed) fn();
      else queue.push(fn); // (between the release and the flush too: in order)
    },
    release() {
      if (released) return;
      released = true;
      let scheduled = false;
      const after = () => {
        if (scheduled) return;
        scheduled = true;
        setTimeout(flush, 0);
      };
      requestAnimationFrame(after);
      setTimeout(after, FRAME_WAIT_MS);
    },
  };
}

/** A hold for this component's lifetime, released at the latest HOLD_MAX_MS after mounting. */
export function useHold(): Hold {
  const hold = useRef<Hold | null>(null);
  if (!hold.current) hold.current = createHold();
  useEffect(() => {
    const t = setTimeout(() => hold.current!.release(), HOLD_MAX_MS);
    return () => clearTimeout(t);
  }, []);
  return hold.current;
}
