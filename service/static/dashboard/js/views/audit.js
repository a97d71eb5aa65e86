// Audit trail: agent actions, oldest first, a page at a time, linked to their session.

import { api } from "../api.js";
import { $, el, sessionLink, table } from "../dom.js";
import { fmtTime } from "../format.js";
import { PAGE_SIZE, pagerFor, updatePager } from "../pager.js";
import { filterParams } from "../state.js";

export async function renderAudit(state, r, isCurrent) {
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
