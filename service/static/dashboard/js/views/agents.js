// Agents: one row per agent, sortable by any column; the sort order is in the URL.

import { api } from "../api.js";
import { $, cell, el, table } from "../dom.js";
import { fmtCount, fmtRate, fmtSeconds } from "../format.js";
import { filterParams, go } from "../state.js";

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

export async function renderAgents(state, r, isCurrent) {
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
