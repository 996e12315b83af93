// Sizes and times as a person reads them: decimal units (what file managers show), and
// a time left rounded to what is worth reading.

const UNITS = ["B", "KB", "MB", "GB", "TB"];

export function bytes(n) {
  let i = 0;
  while (n >= 1000 && i < UNITS.length - 1) {
    n /= 1000;
    i++;
  }
  return `${i === 0 ? n : n.toFixed(n < 10 ? 2 : n < 100 ? 1 : 0)} ${UNITS[i]}`;
}

export function duration(secs) {
  if (secs == null || !Number.isFinite(secs)) return "";
  secs = Math.round(secs);
  if (secs < 60) return `${secs} s left`;
  const m = Math.floor(secs / 60);
  if (m < 60) return `${m} min ${secs % 60} s left`;
  return `${Math.floor(m / 60)} h ${m % 60} min left`;
}
