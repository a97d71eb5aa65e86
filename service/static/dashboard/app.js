// The CallTrail supervisor dashboard: reads the public query API (docs/api.md) with a read key kept in this
// browser, and keeps every filter in the URL so that a view can be shared. No build step, no dependency but
// the vendored uPlot (window.uPlot). Figures' definitions follow docs/metrics.md.

const KEY_STORAGE = "calltrail.readKey";
const LIVE_EVERY_MS = 5000;
const PAGE_SIZE = 50;
const BROWSER_TZ = Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC";
const VIEWS = ["overview", "agents", "cards", "sessions", "audit", "quality", "session"];

const $ = (id) => document.getElementById(id);

// ---------- the URL is the state ----------

function readState() {
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

function stateUrl(state) {
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

function go(changes, replace = false) {
  const next = { ...readState(), ...changes };
  const url = stateUrl(next);
  if (replace) history.replaceState(null, "", url);
  else history.pushState(null, "", url);
  render();
}

// ---------- dates in the chosen time zone ----------

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
function localMidnight(date, tz) {
  const [y, m, d] = date.split("-").map(Number);
  const guess = Date.UTC(y, m - 1, d);
  const first = guess - offsetAt(guess, tz);
  return guess - offsetAt(first, tz);
}

function todayIn(tz) {
  const p = wallParts(Date.now(), tz);
  return `${p.year}-${p.month}-${p.day}`;
}

function addDays(date, days) {
  const [y, m, d] = date.split("-").map(Number);
  return new Date(Date.UTC(y, m - 1, d + days)).toISOString().slice(0, 10);
}

function validTz(tz) {
  try {
    new Intl.DateTimeFormat("en-US", { timeZone: tz });
    return true;
  } catch {
    return false;
  }
}

// The local dates the range covers (both inclusive), and the API's from/to instants.
function range(state) {
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
  if (!["15m", "30m", "hour", "day", "week"].includes(interval)) {
    interval = days <= 2 ? "hour" : days <= 62 ? "day" : "week";
  }
  return {
    first, last, interval,
    from: new Date(localMidnight(first, tz)).toISOString(),
    to: new Date(localMidnight(addDays(last, 1), tz)).toISOString(),
  };
}

// ---------- talking to the API ----------

class Failure extends Error {
  constructor(kind, message, status = 0) {
    super(message);
    this.kind = kind;
    this.status = status;
  }
}

async function api(path, params = {}) {
  const key = localStorage.getItem(KEY_STORAGE);
  if (!key) throw new Failure("nokey", "no key");
  const q = new URLSearchParams();
  for (const [name, value] of Object.entries(params)) if (value) q.set(name, value);
  let response;
  try {
    response = await fetch(`${path}?${q}`, { headers: { authorization: `Bearer ${key}` }, cache: "no-store" });
  } catch {
    throw new Failure("down", "unreachable");
  }
  let body = null;
  try {
    body = await response.json();
  } catch {
    body = null;
  }
  if (response.ok && body) return body;
  const error = (body && body.error) || {};
  const details = (error.details || []).map((d) => (d.field ? `${d.field}: ${d.message}` : d.message)).join("; ");
  const text = [error.message || `HTTP ${response.status}`, details].filter(Boolean).join(" — ");
  if (response.status === 401 || response.status === 403) throw new Failure("unauthorized", text, response.status);
  if (response.status === 400) throw new Failure("bad", text, 400);
  if (response.status === 404) throw new Failure("notfound", text, 404);
  throw new Failure(response.status >= 500 ? "server" : "other", text, response.status);
}

// ---------- formatting ----------

const COUNT = new Intl.NumberFormat("en-US");

function fmtCount(v) {
  return v == null ? "–" : COUNT.format(v);
}

function fmtRate(v) {
  return v == null ? "–" : `${(v * 100).toFixed(1)}%`;
}

function fmtSeconds(v) {
  if (v == null) return "–";
  if (v < 60) return `${v.toFixed(1)} s`;
  const whole = Math.round(v); // round once, so that 779.6 s reads 13 min 0 s, never 12 min 60 s
  if (whole < 3600) return `${Math.floor(whole / 60)} min ${whole % 60} s`;
  return `${Math.floor(whole / 3600)} h ${Math.floor((whole % 3600) / 60)} min`;
}

function fmtTime(iso, tz) {
  if (!iso) return "–";
  return new Intl.DateTimeFormat("sv-SE", { timeZone: tz, dateStyle: "short", timeStyle: "medium" })
    .format(new Date(iso));
}

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value == null || value === false) continue;
    if (name === "text") node.textContent = value;
    else if (name === "onclick") node.addEventListener("click", value);
    else node.setAttribute(name, value === true ? "" : String(value));
  }
  for (const child of children) if (child != null) node.append(child);
  return node;
}

// A table cell with the raw value kept in data-value, so that what is shown can be checked against the API.
function cell(value, format = fmtCount) {
  return el("td", { class: "num", "data-value": value == null ? "" : value, text: format(value) });
}

function table(node, headings, rows, emptyText) {
  node.replaceChildren();
  node.append(el("thead", {}, el("tr", {}, ...headings.map((h) => (h instanceof Node ? h : el("th", { scope: "col", text: h }))))));
  const body = el("tbody");
  if (rows.length === 0) {
    body.append(el("tr", { class: "empty-row" }, el("td", { colspan: headings.length, text: emptyText })));
  }
  for (const row of rows) body.append(row);
  node.append(body);
}

function sessionLink(id) {
  if (!id) return document.createTextNode("–");
  const a = el("a", { href: stateUrl({ ...readState(), view: "session", id }), "data-session": id, text: id.slice(0, 8) });
  return a;
}

// ---------- definitions (docs/metrics.md) ----------

const FIGURES = [
  ["offered", "Offered", "Sessions offered to an agent in the range (status 100 seen), phone, im, om and oim. Sessions the page joined mid-call are left out.", (t) => t.offered, fmtCount],
  ["answered", "Answered", "Offered sessions that were connected (status 200 seen).", (t) => t.answered, fmtCount],
  ["answer_rate", "Answer rate", "Answered ÷ offered.", (t) => t.answer_rate, fmtRate],
  ["service_level", "Service level", "Sessions answered within the threshold (20 s) ÷ (offered − short abandons of 5 s or less).", (t) => t.service_level, fmtRate],
  ["ring_p90", "Ring time p90", "90th percentile of ring time of answered sessions: time from offer to connect at this agent (not queue time, not ASA).", (t) => t.ring_s.p90, fmtSeconds],
  ["talk_mean", "Average talk", "Mean of connect → end over answered sessions with a measured end; includes hold, excludes after-call work.", (t) => t.talk_s.mean, fmtSeconds],
  ["cards_sent", "Cards sent", "sendCard requests agents' pages posted in the range (requests: the workstation does not acknowledge delivery). With a channel filter, those posted during a session of that channel.", (_t, c) => c.cards_sent, fmtCount],
];

function figure(key, label, definition, value, format) {
  const tip = `def-${key}`;
  return el("div", { class: "figure", tabindex: 0, "data-figure": key, "aria-describedby": tip },
    el("dt", { text: label }),
    el("dd", { "data-value": value == null ? "" : value, text: format(value) }),
    el("p", { class: "def", role: "tooltip", id: tip, text: definition }));
}

// ---------- messages ----------

function showMessage(text, { retry = false, kind = "error" } = {}) {
  const box = $("message");
  box.replaceChildren(el("span", { text }));
  if (retry) box.append(" ", el("button", { type: "button", text: "Retry", onclick: () => render() }));
  box.dataset.kind = kind;
  box.hidden = false;
}

function clearMessage() {
  $("message").hidden = true;
  $("message").replaceChildren();
}

function showFailure(failure) {
  const keyCommand = "calltrail keys create --scope read --name dashboard";
  if (!(failure instanceof Failure)) {
    showMessage(`The dashboard failed: ${failure}. Reload the page; if it persists, report it with this text.`, { retry: true });
    return;
  }
  switch (failure.kind) {
    case "nokey":
      showKeyForm();
      showMessage(`Enter a read key to see the dashboard. An administrator creates one with: ${keyCommand}`, { kind: "info" });
      return;
    case "unauthorized":
      showKeyForm();
      showMessage(`The service refused this key (unknown, revoked, or not a read key). Enter a valid read key; create one with: ${keyCommand}`);
      return;
    case "down":
      showMessage(`The CallTrail service at ${location.origin} does not answer. Check that "calltrail serve" is running and reachable, then retry.`, { retry: true });
      return;
    case "bad":
      showMessage(`The service rejected the filters: ${failure.message}. Correct them and apply again.`);
      return;
    case "notfound":
      showMessage(`Not found: ${failure.message}. The link may be wrong, or the data was deleted; go back to the overview.`);
      return;
    default:
      showMessage(`The service failed (HTTP ${failure.status}: ${failure.message}). Retry in a moment; if it persists, check the service's log.`, { retry: true });
  }
}

function showKeyForm() {
  $("key-form").hidden = false;
  $("key-input").focus();
}

// ---------- charts ----------

const charts = {};

function chartWidth(node) {
  return Math.max(280, Math.floor(node.clientWidth || node.parentElement.clientWidth || 400));
}

function drawChart(name, node, options, data) {
  if (charts[name]) charts[name].destroy();
  node.replaceChildren();
  charts[name] = new uPlot({ width: chartWidth(node), height: 220, ...options }, data, node);
  node.dataset.drawn = "true";
}

function xAxis(tz) {
  return { tzDate: (ts) => uPlot.tzDate(new Date(ts * 1000), tz) };
}

function drawOverviewCharts(report, tz) {
  const buckets = report.buckets;
  const xs = buckets.map((b) => Date.parse(b.start) / 1000);
  const answered = buckets.map((b) => b.answered);
  const answeredOrNot = buckets.map((b) => b.answered + b.not_answered);
  const offered = buckets.map((b) => b.offered);
  const bars = uPlot.paths.bars({ size: [0.7, 60] });
  // Stacked by drawing the taller totals first and the parts over them; the legend shows each part's own count.
  const own = (values) => (_u, _v, _s, i) => (i == null ? "–" : fmtCount(values[i]));
  drawChart("calls", $("chart-calls"), {
    ...xAxis(tz),
    series: [
      {},
      { label: "Unresolved", fill: "#c9ccd1", stroke: "#9aa0a8", paths: bars, points: { show: false }, value: own(buckets.map((b) => b.offered - b.answered - b.not_answered)) },
      { label: "Not answered", fill: "#e0815f", stroke: "#b5542f", paths: bars, points: { show: false }, value: own(buckets.map((b) => b.not_answered)) },
      { label: "Answered", fill: "#4f8fcf", stroke: "#2a67a5", paths: bars, points: { show: false }, value: own(answered) },
    ],
    scales: { y: { range: (_u, _min, max) => [0, Math.max(1, max)] } },
    axes: [{}, { label: "calls" }],
  }, [xs, offered, answeredOrNot, answered]);

  const pct = (v) => (v == null ? null : Math.round(v * 1000) / 10);
  drawChart("rates", $("chart-rates"), {
    ...xAxis(tz),
    series: [
      {},
      { label: "Answer rate %", stroke: "#2a67a5", width: 2, spanGaps: false },
      { label: "Service level %", stroke: "#2f8f5b", width: 2, dash: [6, 4], spanGaps: false },
    ],
    scales: { y: { range: [0, 100] } },
    axes: [{}, { label: "%" }],
  }, [xs, buckets.map((b) => pct(b.answer_rate)), buckets.map((b) => pct(b.service_level))]);

  drawChart("ring", $("chart-ring"), {
    ...xAxis(tz),
    series: [
      {},
      { label: "p50 s", stroke: "#2a67a5", width: 2 },
      { label: "p90 s", stroke: "#b5542f", width: 2 },
      { label: "max s", stroke: "#7a5fb0", width: 1, dash: [4, 4] },
    ],
    scales: { y: { range: (_u, _min, max) => [0, Math.max(5, max || 0)] } },
    axes: [{}, { label: "seconds" }],
  }, [xs, buckets.map((b) => b.ring_s.p50), buckets.map((b) => b.ring_s.p90), buckets.map((b) => b.ring_s.max)]);

  // The same numbers as tables, for keyboard and screen-reader users (and for checking).
  const start = (b) => el("th", { scope: "row", text: b.start });
  table($("table-calls"), ["Bucket start", "Offered", "Answered", "Not answered", "Unresolved"],
    buckets.map((b) => el("tr", {}, start(b), cell(b.offered), cell(b.answered), cell(b.not_answered), cell(b.offered - b.answered - b.not_answered))), "No buckets");
  table($("table-rates"), ["Bucket start", "Answer rate", "Service level"],
    buckets.map((b) => el("tr", {}, start(b), cell(b.answer_rate, fmtRate), cell(b.service_level, fmtRate))), "No buckets");
  table($("table-ring"), ["Bucket start", "p50", "p90", "max"],
    buckets.map((b) => el("tr", {}, start(b), cell(b.ring_s.p50, fmtSeconds), cell(b.ring_s.p90, fmtSeconds), cell(b.ring_s.max, fmtSeconds))), "No buckets");
}

let resizeTimer = 0;
window.addEventListener("resize", () => {
  clearTimeout(resizeTimer);
  resizeTimer = setTimeout(() => {
    for (const [name, chart] of Object.entries(charts)) {
      const node = $(`chart-${name}`);
      if (node && !node.closest("[hidden]")) chart.setSize({ width: chartWidth(node), height: 220 });
    }
  }, 150);
});

// ---------- views ----------

function filterParams(state, r, ...names) {
  const all = { from: r.from, to: r.to, tz: state.tz, interval: r.interval, channel: state.channel, agent: state.agent };
  return Object.fromEntries(names.map((n) => [n, all[n]]));
}

async function renderOverview(state, r, isCurrent) {
  // Cards sent comes from the agents report, which reads rollups (tens of ms at a million sessions), not from
  // /v1/analytics/cards, which reads every answered chat of the range (seconds over a month): the same count
  // of sendCard requests, summed over agents, and it honours the channel filter too.
  const [report, agents] = await Promise.all([
    api("/v1/analytics/inbound", filterParams(state, r, "from", "to", "tz", "interval", "channel", "agent")),
    api("/v1/analytics/agents", filterParams(state, r, "from", "to", "channel")),
  ]);
  if (!isCurrent()) return;
  const counted = agents.agents.filter((a) => !state.agent || a.agent_email === state.agent);
  const cards = { cards_sent: counted.reduce((sum, a) => sum + a.cards_sent, 0) };
  if (!state.channel) fillAgentNames(agents.agents);
  const figures = $("figures");
  figures.replaceChildren(...FIGURES.map(([key, label, def, pick, format]) => figure(key, label, def, pick(report.totals, cards), format)));
  const empty = $("overview-empty");
  empty.hidden = report.totals.offered > 0;
  empty.textContent = "No calls were offered in this range with these filters. Widen the date range, or clear the channel and agent filters.";
  drawOverviewCharts(report, state.tz);
}

const AGENT_COLUMNS = [
  ["agent", "Agent", (a) => a.agent_nickname || a.agent_email || ""],
  ["offered", "Offered", (a) => a.offered],
  ["answered", "Answered", (a) => a.answered],
  ["not_answered", "Not answered", (a) => a.not_answered],
  ["answer_rate", "Answer rate", (a) => a.answer_rate, fmtRate],
  ["talk_s_total", "Talk total", (a) => a.talk_s_total, fmtSeconds],
  ["talk_s_mean", "Talk mean", (a) => a.talk_s_mean, fmtSeconds],
  ["cards_sent", "Cards", (a) => a.cards_sent],
  ["call_outs", "Call-outs", (a) => a.call_outs],
  ["peak_concurrent_chats", "Peak chats", (a) => a.peak_concurrent_chats],
];

let focusSort = "";

async function renderAgents(state, r, isCurrent) {
  const report = await api("/v1/analytics/agents", filterParams(state, r, "from", "to", "channel"));
  if (!isCurrent()) return;
  const [sortKey, sortDir] = (state.sort || "offered:desc").split(":");
  const column = AGENT_COLUMNS.find((c) => c[0] === sortKey) || AGENT_COLUMNS[1];
  const sign = sortDir === "asc" ? 1 : -1;
  const rows = [...report.agents].sort((a, b) => {
    const x = column[2](a);
    const y = column[2](b);
    if (x == null) return 1;
    if (y == null) return -1;
    return (typeof x === "string" ? x.localeCompare(y) : x - y) * sign;
  });
  const headings = AGENT_COLUMNS.map(([key, label]) => {
    const active = key === column[0];
    const next = active && sortDir !== "asc" ? "asc" : "desc";
    return el("th", { scope: "col", "aria-sort": active ? (sortDir === "asc" ? "ascending" : "descending") : "none" },
      el("button", { type: "button", class: "sort", "data-sort": key, text: label + (active ? (sortDir === "asc" ? " ▲" : " ▼") : ""),
        onclick: () => { focusSort = key; go({ sort: `${key}:${next}` }, true); } }));
  });
  table($("table-agents"), headings, rows.map((a) => el("tr", { "data-agent": a.agent_email || "" },
    el("th", { scope: "row", title: a.agent_email || "", text: (a.agent_nickname ? `${a.agent_nickname} (${a.agent_email})` : a.agent_email || "(unknown)") }),
    ...AGENT_COLUMNS.slice(1).map(([, , pick, format]) => cell(pick(a), format || fmtCount)))),
  "No agent was offered a session in this range. Widen the date range or clear the channel filter.");
  // Sorting rebuilds the table; keep the keyboard on the heading that was pressed.
  if (focusSort) document.querySelector(`#table-agents button[data-sort="${focusSort}"]`)?.focus();
  focusSort = "";
}

async function renderCards(state, r, isCurrent) {
  const report = await api("/v1/analytics/cards", filterParams(state, r, "from", "to", "agent"));
  if (!isCurrent()) return;
  $("cards-figures").replaceChildren(
    figure("c_sent", "Cards sent", "Cards agents sent in the range.", report.cards_sent, fmtCount),
    figure("c_attach", "Attach rate", "Answered chat sessions with at least one card ÷ answered chat sessions.", report.attach_rate, fmtRate),
    figure("c_per", "Cards per session", "Cards sent in answered chat sessions ÷ those sessions.", report.cards_per_session, (v) => (v == null ? "–" : v.toFixed(2))),
    figure("c_first", "Median time to first card", "Median of connect → first card, over chat sessions with a card.", report.median_s_to_first_card, fmtSeconds),
  );
  table($("table-by-card"), ["Card", "URL", "Sent"], report.by_card.map((c) => el("tr", {},
    el("th", { scope: "row", text: c.header ?? "(no header)" }), el("td", { class: "url", text: c.url ?? "–" }), cell(c.count))),
  "No cards were sent in this range.");
  table($("table-cards-by-agent"), ["Agent", "Sent"], report.by_agent.map((a) => el("tr", {},
    el("th", { scope: "row", text: a.agent_email ?? "(unknown)" }), cell(a.cards_sent))),
  "No cards were sent in this range.");
}

// Keyset pages: the cursors seen so far, so Previous can go back. They live in memory, not in the URL: a
// shared link opens at the first page.
const pagers = { sessions: { cursors: [""], index: 0, key: "" }, audit: { cursors: [""], index: 0, key: "" } };

function pagerFor(name, key) {
  const pager = pagers[name];
  if (pager.key !== key) Object.assign(pager, { cursors: [""], index: 0, key });
  return pager;
}

function updatePager(name, nextCursor) {
  const pager = pagers[name];
  pager.cursors.length = pager.index + 1;
  if (nextCursor) pager.cursors.push(nextCursor);
  const box = document.querySelector(`[data-pager="${name}"]`);
  box.querySelector('[data-page="first"]').disabled = pager.index === 0;
  box.querySelector('[data-page="prev"]').disabled = pager.index === 0;
  box.querySelector('[data-page="next"]').disabled = !nextCursor;
  box.querySelector(".page-label").textContent = `Page ${pager.index + 1}`;
}

async function renderSessions(state, r, isCurrent) {
  const params = { ...filterParams(state, r, "from", "to", "channel", "agent"), limit: PAGE_SIZE };
  const pager = pagerFor("sessions", JSON.stringify(params));
  const page = await api("/v1/sessions", { ...params, cursor: pager.cursors[pager.index] });
  if (!isCurrent()) return;
  table($("table-sessions"), ["Session", "Offered", "Channel", "Agent", "Customer", "Outcome", "Ring", "Talk", "Cards"],
    page.sessions.map((s) => el("tr", {}, el("td", {}, sessionLink(s.id)), el("td", { text: fmtTime(s.offered_at, state.tz) }),
      el("td", { text: s.channel ?? "–" }), el("td", { text: s.agent_email ?? "–" }),
      el("td", { text: s.customer_mobile ?? s.customer_user_id ?? "–" }), el("td", { text: s.outcome }),
      cell(s.ring_s, fmtSeconds), cell(s.talk_s, fmtSeconds), cell(s.cards_sent))),
    "No sessions in this range with these filters.");
  updatePager("sessions", page.next_cursor);
}

async function renderAudit(state, r, isCurrent) {
  const params = { ...filterParams(state, r, "from", "to", "agent"), limit: PAGE_SIZE };
  const pager = pagerFor("audit", JSON.stringify(params));
  const page = await api("/v1/audit", { ...params, cursor: pager.cursors[pager.index] });
  if (!isCurrent()) return;
  table($("table-audit"), ["At", "Agent", "Action", "Session", "Details"],
    page.actions.map((a) => el("tr", {}, el("td", { text: fmtTime(a.at, state.tz) }), el("td", { text: a.agent_email ?? "–" }),
      el("td", { text: a.action }), el("td", {}, sessionLink(a.session_id)),
      el("td", { class: "details" }, el("code", { text: JSON.stringify(a.details) })))),
    "No agent actions in this range.");
  updatePager("audit", page.next_cursor);
}

async function renderQuality(state, r, isCurrent) {
  const q = await api("/v1/quality", filterParams(state, r, "from", "to"));
  if (!isCurrent()) return;
  const rows = [
    ["Events received", q.events, null], ["Pages", q.pages, null],
    ["Pages with sequence gaps", q.pages_with_gaps, null], ["Events lost (gaps)", q.missing_events, q.loss_rate],
    ["Duplicate events", q.duplicate_events, q.duplicate_rate], ["Sessions", q.sessions, null],
    ["Closed by timeout", q.closed_by_timeout, q.closed_by_timeout_share],
    ["Closed by supersession", q.closed_by_supersession, q.closed_by_supersession_share],
    ["Observed mid-session", q.observed_mid_session, q.observed_mid_session_share],
    ["Projection failures (dead letters)", q.projection_failures, null],
    ["Quarantined events", q.quarantined_events, null],
  ];
  table($("table-quality"), ["Measure", "Count", "Share"],
    rows.map(([label, count, share]) => el("tr", {}, el("th", { scope: "row", text: label }), cell(count), cell(share, fmtRate))), "");
  const pages = q.pages_with_problems || [];
  const keys = pages.length ? Object.keys(pages[0]) : ["page"];
  table($("table-quality-pages"), keys, pages.map((p) => el("tr", {}, ...keys.map((k) => el("td", { text: typeof p[k] === "object" ? JSON.stringify(p[k]) : String(p[k] ?? "–") })))),
    "No page lost or repeated events in this range.");
}

async function renderSession(state, _r, isCurrent) {
  if (!state.id) throw new Failure("notfound", "no session id in the link", 404);
  const s = await api(`/v1/sessions/${encodeURIComponent(state.id)}`);
  if (!isCurrent()) return;
  $("session-id").textContent = s.id;
  const fields = [["Channel", s.channel], ["Agent", s.agent_email], ["Customer", s.customer_mobile ?? s.customer_user_id],
    ["Outcome", s.outcome], ["Offered", fmtTime(s.offered_at, state.tz)], ["Connected", fmtTime(s.connected_at, state.tz)],
    ["Ended", fmtTime(s.ended_at, state.tz)], ["Ended by", s.end_source], ["Ring", fmtSeconds(s.ring_s)],
    ["Talk", fmtSeconds(s.talk_s)], ["Cards sent", s.cards_sent], ["Call-outs", s.call_outs], ["Events", s.event_count]];
  $("session-fields").replaceChildren(...fields.flatMap(([k, v]) => [el("dt", { text: k }), el("dd", { text: v ?? "–" })]));
  table($("table-timeline"), ["At", "Kind", "What", "Raw"], s.timeline.map((item) => {
    const what = item.kind === "event" ? `status ${item.status ?? "?"} (seq ${item.seq ?? "?"})` : item.action ?? "action";
    const raw = item.kind === "event" ? item.raw : item.details;
    return el("tr", { "data-kind": item.kind }, el("td", { text: fmtTime(item.at, state.tz) }), el("td", { text: item.kind }),
      el("td", { text: what }), el("td", { class: "details" }, el("code", { text: typeof raw === "string" ? raw : JSON.stringify(raw ?? {}) })));
  }), "This session has no events.");
}

const RENDERERS = { overview: renderOverview, agents: renderAgents, cards: renderCards, sessions: renderSessions,
  audit: renderAudit, quality: renderQuality, session: renderSession };

// Suggestions for the agent filter: the agents of the range, as the overview's agents report lists them.
function fillAgentNames(agents) {
  $("agent-list").replaceChildren(...agents.filter((a) => a.agent_email).map((a) => el("option", { value: a.agent_email })));
}

// ---------- the render loop ----------

let generation = 0;

function syncForm(state, r) {
  $("f-preset").value = state.preset;
  $("f-from").value = r.first;
  $("f-to").value = r.last;
  $("f-from").disabled = $("f-to").disabled = state.preset !== "custom";
  $("f-tz").value = state.tz;
  $("f-interval").value = ["15m", "30m", "hour", "day", "week"].includes(state.interval) ? state.interval : "auto";
  $("f-channel").value = state.channel;
  $("f-agent").value = state.agent;
  for (const link of document.querySelectorAll("nav a")) {
    link.href = stateUrl({ ...state, view: link.dataset.view });
    if (link.dataset.view === state.view) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
}

async function render() {
  const mine = ++generation;
  const isCurrent = () => mine === generation;
  const state = readState();
  const r = range(state);
  syncForm(state, r);
  for (const section of document.querySelectorAll("main > section")) section.hidden = section.dataset.view !== state.view;
  const main = $("main");
  main.setAttribute("aria-busy", "true");
  main.classList.add("loading");
  clearMessage();
  if (!validTz(state.tz)) {
    showMessage(`Unknown time zone "${state.tz}". Pick one from the list (for example ${BROWSER_TZ}) and apply.`);
    main.classList.remove("loading");
    main.setAttribute("aria-busy", "false");
    return;
  }
  try {
    await RENDERERS[state.view](state, r, isCurrent);
    if (isCurrent()) {
      $("key-form").hidden = true;
      // Time from navigation to this view drawn: what bench/dashboard.py reports as first render.
      if (!document.body.dataset.readyMs) document.body.dataset.readyMs = String(Math.round(performance.now()));
      document.body.dataset.ready = "true";
    }
  } catch (failure) {
    if (!isCurrent()) return;
    // Numbers from an earlier answer would read as current: show only what to do.
    for (const section of document.querySelectorAll("main > section")) section.hidden = true;
    showFailure(failure);
  } finally {
    if (isCurrent()) {
      main.classList.remove("loading");
      main.setAttribute("aria-busy", "false");
    }
  }
}

// ---------- live strip ----------

let liveInFlight = false;

async function refreshLive() {
  // One request at a time: on a slow service, answers arriving out of order would show older figures.
  if (liveInFlight || document.hidden || !localStorage.getItem(KEY_STORAGE)) return;
  liveInFlight = true;
  try {
    const live = await api("/v1/live");
    $("live-ringing").textContent = fmtCount(live.ringing_now);
    $("live-connected").textContent = fmtCount(live.connected_now);
    $("live-longest").textContent = fmtSeconds(live.longest_ring_s);
    for (const [id, value] of [["live-ringing", live.ringing_now], ["live-connected", live.connected_now], ["live-longest", live.longest_ring_s]]) {
      $(id).dataset.value = value == null ? "" : value;
    }
    $("live-status").textContent = `as of ${fmtTime(live.as_of, readState().tz).slice(11)}`;
    $("live").classList.remove("stale");
  } catch {
    $("live-status").textContent = "live figures unavailable";
    $("live").classList.add("stale");
  } finally {
    liveInFlight = false;
  }
}

// ---------- wiring ----------

function applyFilters(event) {
  if (event) event.preventDefault();
  const preset = $("f-preset").value;
  const changes = {
    preset,
    tz: $("f-tz").value.trim() || BROWSER_TZ,
    interval: $("f-interval").value,
    channel: $("f-channel").value,
    agent: $("f-agent").value.trim(),
  };
  if (preset === "custom") {
    changes.from = $("f-from").value;
    changes.to = $("f-to").value || $("f-from").value;
  }
  go(changes);
}

function init() {
  if (typeof Intl.supportedValuesOf === "function") {
    $("tz-list").replaceChildren(...Intl.supportedValuesOf("timeZone").map((tz) => el("option", { value: tz })));
  }
  $("filters").addEventListener("submit", applyFilters);
  for (const id of ["f-preset", "f-interval", "f-channel"]) {
    $(id).addEventListener("change", () => {
      if (id === "f-preset" && $("f-preset").value === "custom") {
        $("f-from").disabled = $("f-to").disabled = false;
        $("f-from").focus();
        return;
      }
      applyFilters();
    });
  }
  $("key-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const key = $("key-input").value.trim();
    if (!key) return;
    localStorage.setItem(KEY_STORAGE, key);
    $("key-input").value = "";
    render();
    refreshLive();
  });
  $("key-forget").addEventListener("click", () => {
    localStorage.removeItem(KEY_STORAGE);
    render();
  });
  $("key-change").addEventListener("click", showKeyForm);
  // Views and session links change the URL without reloading the page.
  document.addEventListener("click", (event) => {
    const link = event.target.closest("a[data-view], a[data-session]");
    if (!link || event.ctrlKey || event.metaKey || event.shiftKey || event.button !== 0) return;
    event.preventDefault();
    history.pushState(null, "", link.href);
    render();
    $("main").focus({ preventScroll: true });
  });
  for (const box of document.querySelectorAll("[data-pager]")) {
    box.addEventListener("click", (event) => {
      const button = event.target.closest("button[data-page]");
      if (!button) return;
      const pager = pagers[box.dataset.pager];
      if (button.dataset.page === "first") pager.index = 0;
      else if (button.dataset.page === "prev") pager.index = Math.max(0, pager.index - 1);
      else if (pager.index + 1 < pager.cursors.length) pager.index += 1;
      render();
    });
  }
  window.addEventListener("popstate", render);
  history.replaceState(null, "", stateUrl(readState()));
  render();
  refreshLive();
  setInterval(refreshLive, LIVE_EVERY_MS);
}

// uPlot is a classic deferred script, which runs before this module: both are in document order.
init();
