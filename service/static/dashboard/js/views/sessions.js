// Sessions: newest first, a page at a time, each linked to its detail.

import { api } from "../api.js";
import { $, cell, el, sessionLink, table } from "../dom.js";
import { fmtSeconds, fmtTime } from "../format.js";
import { PAGE_SIZE, pagerFor, updatePager } from "../pager.js";
import { filterParams } from "../state.js";

export async function renderSessions(state, r, isCurrent) {
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
