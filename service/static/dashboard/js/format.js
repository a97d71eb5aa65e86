// How figures and times read on the page: "–" wherever the API has no value.

const COUNT = new Intl.NumberFormat("en-US");

export function fmtCount(v) {
  return v == null ? "–" : COUNT.format(v);
}

export function fmtRate(v) {
  return v == null ? "–" : `${(v * 100).toFixed(1)}%`;
}

export function fmtSeconds(v) {
  if (v == null) return "–";
  if (v < 60) return `${v.toFixed(1)} s`;
  const whole = Math.round(v); // round once, so that 779.6 s reads 13 min 0 s, never 12 min 60 s
  if (whole < 3600) return `${Math.floor(whole / 60)} min ${whole % 60} s`;
  return `${Math.floor(whole / 3600)} h ${Math.floor((whole % 3600) / 60)} min`;
}

export function fmtTime(iso, tz) {
  if (!iso) return "–";
  return new Intl.DateTimeFormat("sv-SE", { timeZone: tz, dateStyle: "short", timeStyle: "medium" })
    .format(new Date(iso));
}
