// Local dates in the chosen time zone, computed with Intl alone (no time zone library to vendor).

export const BROWSER_TZ = Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC";

function wallParts(ms, tz) {
  const format = new Intl.DateTimeFormat("en-US", {
    timeZone: tz, hourCycle: "h23", year: "numeric", month: "2-digit", day: "2-digit",
    hour: "2-digit", minute: "2-digit", second: "2-digit",
  });
  return Object.fromEntries(format.formatToParts(new Date(ms)).map((p) => [p.type, p.value]));
}

function offsetAt(ms, tz) {
  const p = wallParts(ms, tz);
  return Date.UTC(+p.year, +p.month - 1, +p.day, +p.hour, +p.minute, +p.second) - Math.floor(ms / 1000) * 1000;
}

// The instant a local date starts in tz; two passes settle the offset across a DST change.
export function localMidnight(date, tz) {
  const [y, m, d] = date.split("-").map(Number);
  const guess = Date.UTC(y, m - 1, d);
  const first = guess - offsetAt(guess, tz);
  return guess - offsetAt(first, tz);
}

export function todayIn(tz) {
  const p = wallParts(Date.now(), tz);
  return `${p.year}-${p.month}-${p.day}`;
}

export function addDays(date, days) {
  const [y, m, d] = date.split("-").map(Number);
  return new Date(Date.UTC(y, m - 1, d + days)).toISOString().slice(0, 10);
}

export function validTz(tz) {
  try {
    new Intl.DateTimeFormat("en-US", { timeZone: tz });
    return true;
  } catch {
    return false;
  }
}
