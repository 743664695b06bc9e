// Lazy drawing: call fn once when el comes within a margin of the viewport.
// One IntersectionObserver for every chart on the page.
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
      { rootMargin: "150px 0px" },
    );
  }
  return io;
}

export function whenVisible(el: Element, fn: () => void): () => void {
  callbacks.set(el, fn);
  observer().observe(el);
  return () => {
    callbacks.delete(el);
    io?.unobserve(el);
  };
}
