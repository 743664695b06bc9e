// Code-split pages: a page module is fetched the first time its route is shown.
import { ComponentType } from "preact";
import { useEffect, useState } from "preact/hooks";
import { ErrorView } from "./errors";

export function lazy<P>(load: () => Promise<ComponentType<P>>): ComponentType<P> {
  let cached: ComponentType<P> | null = null;
  let promise: Promise<ComponentType<P>> | null = null;
  return function Lazy(props: P) {
    const [C, setC] = useState<ComponentType<P> | null>(() => cached);
    const [err, setErr] = useState<unknown>(null);
    useEffect(() => {
      if (cached) return;
      promise = promise || load();
      promise.then((c) => {
        cached = c;
        setC(() => c);
      }, (e) => {
        promise = null;
        setErr(e);
      });
    }, []);
    if (err) return <ErrorView error={err} />;
    if (!C) return <div class="loading">Loading…</div>;
    return <C {...(props as any)} />;
  };
}
