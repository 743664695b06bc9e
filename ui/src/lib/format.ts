export function fmtTime(ms: number | null | undefined): string {
  if (!ms) return "";
  const d = new Date(ms);
  const p = (n: number) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
}

export function fmtAgo(ms: number | null | undefined, now = Date.now()): string {
  if (!ms) return "never";
  const s = Math.max(0, (now - ms) / 1000);
  if (s < 60) return Math.round(s) + " s ago";
  if (s < 3600) return Math.round(s / 60) + " min ago";
  if (s < 86400) return Math.round(s / 3600) + " h ago";
  return Math.round(s / 86400) + " d ago";
}

export function fmtDuration(start: number, end: number | null, status: string, now = Date.now()): string {
  if (!start) return "";
  const stop = end || (status === "RUNNING" ? now : 0);
  if (!stop) return "";
  const s = Math.max(0, (stop - start) / 1000);
  if (s < 60) return s.toFixed(1) + " s";
  if (s < 3600) return (s / 60).toFixed(1) + " min";
  if (s < 2 * 86400) return (s / 3600).toFixed(1) + " h";
  return (s / 86400).toFixed(1) + " d";
}

export function fmtNum(v: number | string | undefined): string {
  if (v === undefined || v === null) return "";
  if (typeof v === "string") return v; // NaN / inf arrive as strings
  if (Number.isInteger(v)) return String(v);
  const a = Math.abs(v);
  if (a !== 0 && (a < 1e-4 || a >= 1e7)) return v.toExponential(4);
  return String(Number(v.toPrecision(6)));
}

/** 1234567 -> "1,234,567". Not toLocaleString: a page's first Intl call costs a new
 * renderer 15-35 ms here (ICU starting), and the runs table's first paint shows a count. */
export function fmtCount(n: number | null | undefined): string {
  if (n === null || n === undefined) return "…";
  if (!Number.isFinite(n)) return String(n);
  const neg = n < 0;
  const s = String(Math.trunc(Math.abs(n))).replace(/\B(?=(\d{3})+(?!\d))/g, ",");
  return neg ? "-" + s : s;
}
