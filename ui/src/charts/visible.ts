// Lazy drawing: call fn once when el comes within a margin of the viewport.
// One IntersectionObserver for every chart on the page.
const MARGIN_PX = 150;
const callbacks = new WeakMap<Element, () => void>();
let io: IntersectionObserver | null = null;

function observer(): IntersectionObserver {
  if (!io) {
    io = new IntersectionObserver(
      (entries) => {
        for (const e of entries) {
          if (!e.isIntersecting) continue;
          const fn = callbacks.get(e.target);
          callbacks.delete(e.target);
          io!.unobserve(e.target);
          fn?.();
        }
      },
      { rootMargin: MARGIN_PX + "px 0px" },
    );
  }
  return io;
}

/** Called from a layout effect, an element already within the margin gets fn at once:
 * the observer's first answer comes only after the next frame is rendered (30-70 ms of
 * a cold run page here, before its charts' requests could start). */
export function whenVisible(el: Element, fn: () => void): () => void {
  const r = el.getBoundingClientRect();
  if (r.bottom >= -MARGIN_PX && r.top <= window.innerHeight + MARGIN_PX && (r.width > 0 || r.height > 0)) {
    fn();
    return () => undefined;
  }
  callbacks.set(el, fn);
  observer().observe(el);
  return () => {
    callbacks.delete(el);
    io?.unobserve(el);
  };
}
