// What boot.ts leaves for the app (types only: boot.ts imports them with `import type`,
// which the build erases, so it still waits for no other file).

/** An answer as read in full: lib/api.ts takes it as it would a fetch's. */
export interface Answer {
  ok: boolean;
  status: number;
  statusText: string;
  text: string;
}

/** One early request (window.__mfEarly, by "METHOD path body"). */
export interface Early {
  at: number;
  answer: Promise<Answer>;
  /** the page's main content (its first render waits for it, main.tsx); the others
   * decorate the page (an experiment's name, the column picker's keys) and are held
   * until that content is on screen (lib/hold.ts) */
  main?: boolean;
  /** the answer, once it is in: a page that mounts after it arrived shows it in its first
   * render (lib/api.ts earlyJson), without waiting for promise callbacks */
  done?: Answer;
}
