// Session detail: one session's fields and its timeline of raw events and agent actions.

import { Failure, api } from "../api.js";
import { $, el, table } from "../dom.js";
import { fmtSeconds, fmtTime } from "../format.js";

export async function renderSession(state, _r, isCurrent) {
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
