// Data quality: what was received, lost, repeated or held back, and the pages with problems.

import { api } from "../api.js";
import { $, cell, el, table } from "../dom.js";
import { fmtRate } from "../format.js";
import { filterParams } from "../state.js";

export async function renderQuality(state, r, isCurrent) {
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
