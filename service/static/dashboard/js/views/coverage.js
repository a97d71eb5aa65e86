// Coverage: did the pop-up see every call agents answered? CCC's answered legs joined to a page session or
// not, page sessions CCC has no record of, per agent, and the unseen legs a page at a time (docs/coverage.md).

import { api } from "../api.js";
import { $, cell, el, figure, table } from "../dom.js";
import { fmtCount, fmtRate, fmtTime } from "../format.js";
import { PAGE_SIZE, pagerFor, updatePager } from "../pager.js";
import { filterParams } from "../state.js";

const share = (part, whole) => (whole ? Math.round((part / whole) * 1e6) / 1e6 : null);

const FIGURES = [
  ["cov_answered", "Answered legs", "Agent legs of CCC's call records answered in the range (AcceptTimestamp), of the registered CCC apps.", (t) => t.answered_legs, fmtCount],
  ["cov_seen", "Seen", "Answered legs joined to the pop-up page session that showed them.", (t) => t.seen, fmtCount],
  ["cov_seen_share", "Seen share", "Seen ÷ answered legs: how much of what agents answered CallTrail saw.", (t) => share(t.seen, t.answered_legs), fmtRate],
  ["cov_unseen", "Unseen", "Answered legs no page session is a candidate for: the pop-up was not open, its events were lost, or the page's agent, customer or time do not match.", (t) => t.unseen, fmtCount],
  ["cov_ambiguous", "Ambiguous", "Answered legs with two equally near candidates (within 1 s): recorded, not guessed; neither seen nor unseen.", (t) => t.ambiguous, fmtCount],
  ["cov_page_only", "Page only", "Page sessions offered in the range with no joined leg, counted only within the span of their app's call records of that channel (a tie's session counts here too).", (t) => t.page_only, fmtCount],
];

const COUNT_COLUMNS = [["answered_legs", "Answered legs"], ["seen", "Seen"], ["unseen", "Unseen"], ["ambiguous", "Ambiguous"], ["page_only", "Page only"]];

export async function renderCoverage(state, r, isCurrent) {
  const params = { ...filterParams(state, r, "from", "to", "agent"), limit: PAGE_SIZE };
  const pager = pagerFor("coverage", JSON.stringify(params));
  const report = await api("/v1/coverage", { ...params, cursor: pager.cursors[pager.index] });
  if (!isCurrent()) return;
  $("coverage-figures").replaceChildren(...FIGURES.map(([key, label, def, pick, format]) => figure(key, label, def, pick(report.totals), format)));
  const empty = $("coverage-empty");
  empty.hidden = report.totals.answered_legs > 0 || report.totals.page_only > 0;
  empty.textContent = "No answered call records in this range. Coverage needs CCC's Data Push (or the pull) for a registered app: see docs/ccc.md. Or widen the date range.";
  table($("table-coverage-agents"), ["Agent", ...COUNT_COLUMNS.map(([, label]) => label), "Seen share"],
    report.by_agent.map((a) => el("tr", { "data-agent": a.agent_email || "" },
      el("th", { scope: "row", text: a.agent_email ?? "(unknown)" }),
      ...COUNT_COLUMNS.map(([key]) => cell(a[key])), cell(share(a.seen, a.answered_legs), fmtRate))),
    "No agent answered a call CCC recorded in this range.");
  table($("table-unseen"), ["Answered", "SessionId", "App", "Leg", "Agent", "Channel"],
    report.unseen.map((u) => el("tr", { "data-session": u.session_id },
      el("td", { text: fmtTime(u.accept_at, state.tz) }), el("td", { class: "mono", text: u.session_id }),
      el("td", { text: String(u.sdk_app_id) }), cell(u.leg), el("td", { text: u.agent_email ?? "–" }),
      el("td", { text: u.channel }))),
    "Every answered leg in this range was seen (or is ambiguous).");
  updatePager("coverage", report.next_cursor);
}
