// Cards: the cards report's figures, by card and by agent. It has no channel filter (the report has none).

import { api } from "../api.js";
import { $, cell, el, figure, table } from "../dom.js";
import { fmtCount, fmtRate, fmtSeconds } from "../format.js";
import { filterParams } from "../state.js";

export async function renderCards(state, r, isCurrent) {
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
