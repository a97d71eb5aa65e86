// The URL is the state: every filter and the view live in the query string, so that a view can be shared.

import { BROWSER_TZ, addDays, localMidnight, todayIn, validTz } from "./dates.js";

const VIEWS = ["overview", "calls", "coverage", "agents", "cards", "sessions", "audit", "quality", "session"];
export const INTERVALS = ["15m", "30m", "hour", "day", "week"];

export function readState() {
  const q = new URLSearchParams(location.search);
  const view = VIEWS.includes(q.get("view")) ? q.get("view") : "overview";
  return {
    view,
    id: q.get("id") || "",
    preset: ["today", "7d", "30d", "custom"].includes(q.get("preset")) ? q.get("preset") : "7d",
    from: q.get("from") || "",
    to: q.get("to") || "",
    tz: q.get("tz") || BROWSER_TZ,
    interval: q.get("interval") || "auto",
    channel: q.get("channel") || "",
    agent: q.get("agent") || "",
    sort: q.get("sort") || "",
  };
}

export function stateUrl(state) {
  const q = new URLSearchParams();
  q.set("view", state.view);
  if (state.view === "session" && state.id) q.set("id", state.id);
  q.set("preset", state.preset);
  if (state.preset === "custom") {
    q.set("from", state.from);
    q.set("to", state.to);
  }
  q.set("tz", state.tz);
  q.set("interval", state.interval);
  if (state.channel) q.set("channel", state.channel);
  if (state.agent) q.set("agent", state.agent);
  if (state.sort) q.set("sort", state.sort);
  return `${location.pathname}?${q}`;
}

// The render loop registers itself here: views and controls that change the state then need not import it,
// which would make the module graph circular.
let renderer = () => {};

export function setRenderer(render) {
  renderer = render;
}

export function rerender() {
  renderer();
}

export function go(changes, replace = false) {
  const next = { ...readState(), ...changes };
  const url = stateUrl(next);
  if (replace) history.replaceState(null, "", url);
  else history.pushState(null, "", url);
  rerender();
}

// The local dates the range covers (both inclusive), and the API's from/to instants.
export function range(state) {
  const tz = validTz(state.tz) ? state.tz : "UTC";
  const today = todayIn(tz);
  let first = today;
  let last = today;
  if (state.preset === "7d") first = addDays(today, -6);
  else if (state.preset === "30d") first = addDays(today, -29);
  else if (state.preset === "custom") {
    first = /^\d{4}-\d{2}-\d{2}$/.test(state.from) ? state.from : today;
    last = /^\d{4}-\d{2}-\d{2}$/.test(state.to) ? state.to : first;
  }
  const days = Math.round((Date.parse(last) - Date.parse(first)) / 86400000) + 1;
  let interval = state.interval;
  if (!INTERVALS.includes(interval)) {
    interval = days <= 2 ? "hour" : days <= 62 ? "day" : "week";
  }
  return {
    first, last, interval,
    from: new Date(localMidnight(first, tz)).toISOString(),
    to: new Date(localMidnight(addDays(last, 1), tz)).toISOString(),
  };
}

// The API parameters a view sends: each report accepts only some of the filters.
export function filterParams(state, r, ...names) {
  const all = { from: r.from, to: r.to, tz: state.tz, interval: r.interval, channel: state.channel, agent: state.agent };
  return Object.fromEntries(names.map((n) => [n, all[n]]));
}
