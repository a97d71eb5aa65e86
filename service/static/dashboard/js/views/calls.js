// Calls: CCC's own call records (/v1/analytics/calls): what callers went through before an agent, which
// the pop-up never sees: the queue, abandons by stage, the service level, skill groups, satisfaction.

import { api } from "../api.js";
import { barPaths, drawChart, xAxis } from "../chart.js";
import { $, cell, el, figure, table } from "../dom.js";
import { fmtCount, fmtRate, fmtSeconds } from "../format.js";
import { filterParams } from "../state.js";

const FIGURES = [
  ["calls_offered", "Offered", "Calls CCC recorded in the range (its call records, one per customer session).", (t) => t.offered, fmtCount],
  ["calls_answered", "Answered", "Calls an agent answered.", (t) => t.answered, fmtCount],
  ["calls_abandoned", "Abandoned", "Calls the caller ended before an agent answered: in the IVR, in the queue or while an agent's phone rang.", (t) => t.abandoned, fmtCount],
  ["calls_service_level", "Service level", "Calls answered within the service-level threshold ÷ calls offered (CCC's records).", (t) => t.service_level, fmtRate],
  ["calls_asa", "ASA", "Average speed of answer: mean time from joining the queue to an agent answering, answered calls.", (t) => t.asa_s, fmtSeconds],
  ["calls_queue_p90", "Queue time p90", "90th percentile of time in the queue (to answer, or to abandon).", (t) => t.queue_s.p90, fmtSeconds],
  ["calls_transferred", "Transferred", "Calls handed on from one agent to another, or to an outside number.", (t) => t.transferred, fmtCount],
  ["calls_no_agent", "No agent", "Calls that ended because no agent was online or free.", (t) => t.no_agent, fmtCount],
  ["calls_after_hours", "After hours", "Calls that arrived outside the working hours.", (t) => t.after_hours, fmtCount],
];

const STAGES = [["abandoned_ivr", "In the IVR"], ["abandoned_queue", "In the queue"], ["abandoned_ringing", "While ringing"]];

function skillGroupName(g) {
  return g.skill_group_name ?? g.skill_group ?? (g.skill_group_id == null ? "(no skill group)" : String(g.skill_group_id));
}

function drawCallsChart(report, tz) {
  const buckets = report.buckets;
  const xs = buckets.map((b) => Date.parse(b.start) / 1000);
  const bars = barPaths({ size: [0.7, 60] });
  const own = (values) => (_u, _v, _s, i) => (i == null ? "–" : fmtCount(values[i]));
  const abandoned = buckets.map((b) => b.abandoned);
  drawChart("ccc-calls", $("chart-ccc-calls"), {
    ...xAxis(tz),
    series: [
      {},
      { label: "Other", fill: "#c9ccd1", stroke: "#9aa0a8", paths: bars, points: { show: false }, value: own(buckets.map((b) => b.offered - b.answered - b.abandoned)) },
      { label: "Abandoned", fill: "#e0815f", stroke: "#b5542f", paths: bars, points: { show: false }, value: own(abandoned) },
      { label: "Answered", fill: "#4f8fcf", stroke: "#2a67a5", paths: bars, points: { show: false }, value: own(buckets.map((b) => b.answered)) },
    ],
    scales: { y: { range: (_u, _min, max) => [0, Math.max(1, max)] } },
    axes: [{}, { label: "calls" }],
  }, [xs, buckets.map((b) => b.offered), buckets.map((b) => b.answered + b.abandoned), buckets.map((b) => b.answered)]);
  const start = (b) => el("th", { scope: "row", text: b.start });
  table($("table-ccc-calls"), ["Bucket start", "Offered", "Answered", "Abandoned", "Service level", "Queue p90"],
    buckets.map((b) => el("tr", {}, start(b), cell(b.offered), cell(b.answered), cell(b.abandoned),
      cell(b.service_level, fmtRate), cell(b.queue_s.p90, fmtSeconds))), "No buckets");
}

// The page's channel types (the hash's `type`) as CCC's record channels; `oim` (audio and text) is both, so
// it filters nothing.
const CCC_CHANNELS = { phone: "phone", im: "chat", om: "video" };

export async function renderCalls(state, r, isCurrent) {
  const params = filterParams(state, r, "from", "to", "tz", "interval", "channel", "agent");
  params.channel = CCC_CHANNELS[params.channel];
  const report = await api("/v1/analytics/calls", params);
  if (!isCurrent()) return;
  const t = report.totals;
  $("calls-figures").replaceChildren(...FIGURES.map(([key, label, def, pick, format]) => figure(key, label, def, pick(t), format)));
  const empty = $("calls-empty");
  empty.hidden = t.offered > 0;
  empty.textContent = "CCC recorded no calls in this range with these filters. Call records come from CCC's Data Push or the pull of a registered app (docs/ccc.md); or widen the date range.";
  table($("table-abandons"), ["Stage", "Abandoned", "Share of offered"],
    STAGES.map(([key, label]) => el("tr", { "data-stage": key }, el("th", { scope: "row", text: label }), cell(t[key]), cell(t.offered ? t[key] / t.offered : null, fmtRate))), "");
  table($("table-queue"), ["Measure", "Queue time"],
    [["mean", "Mean"], ["p50", "p50"], ["p90", "p90"], ["max", "Max"]].map(([key, label]) =>
      el("tr", {}, el("th", { scope: "row", text: label }), cell(t.queue_s[key], fmtSeconds))), "");
  table($("table-hung-up"), ["Hung up by", "Calls"],
    [["user", "Caller"], ["seat", "Agent"], ["system", "System"]].map(([key, label]) =>
      el("tr", {}, el("th", { scope: "row", text: label }), cell(t.hung_up_by[key]))), "");
  table($("table-skill-groups"), ["Skill group", "Offered", "Answered", "Abandoned", "Service level", "ASA", "Queue p90", "Transferred"],
    report.by_skill_group.map((g) => el("tr", {}, el("th", { scope: "row", text: skillGroupName(g) }),
      cell(g.offered), cell(g.answered), cell(g.abandoned), cell(g.service_level, fmtRate), cell(g.asa_s, fmtSeconds),
      cell(g.queue_s.p90, fmtSeconds), cell(g.transferred))),
    "No calls queued to a skill group in this range.");
  const satisfaction = Object.entries(t.satisfaction || {}).sort(([a], [b]) => a.localeCompare(b));
  const rated = satisfaction.reduce((sum, [, n]) => sum + n, 0);
  table($("table-satisfaction"), ["Key pressed", "Calls", "Share of rated"],
    satisfaction.map(([key, n]) => el("tr", { "data-key": key }, el("th", { scope: "row", text: key }), cell(n), cell(rated ? n / rated : null, fmtRate))),
    "No caller rated a call in this range.");
  drawCallsChart(report, state.tz);
}
