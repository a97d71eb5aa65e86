// Overview: the headline figures and three charts, each chart with a table of its numbers.

import { api } from "../api.js";
import { barPaths, drawChart, xAxis } from "../chart.js";
import { $, cell, el, figure, table } from "../dom.js";
import { fmtCount, fmtRate, fmtSeconds } from "../format.js";
import { filterParams } from "../state.js";

// Definitions follow docs/metrics.md.
const FIGURES = [
  ["offered", "Offered", "Sessions offered to an agent in the range (status 100 seen), phone, im, om and oim. Sessions the page joined mid-call are left out.", (t) => t.offered, fmtCount],
  ["answered", "Answered", "Offered sessions that were connected (status 200 seen).", (t) => t.answered, fmtCount],
  ["answer_rate", "Answer rate", "Answered ÷ offered.", (t) => t.answer_rate, fmtRate],
  ["service_level", "Service level", "Sessions answered within the threshold (20 s) ÷ (offered − short abandons of 5 s or less).", (t) => t.service_level, fmtRate],
  ["ring_p90", "Ring time p90", "90th percentile of ring time of answered sessions: time from offer to connect at this agent (not queue time, not ASA).", (t) => t.ring_s.p90, fmtSeconds],
  ["talk_mean", "Average talk", "Mean of connect → end over answered sessions with a measured end; includes hold, excludes after-call work.", (t) => t.talk_s.mean, fmtSeconds],
  ["cards_sent", "Cards sent", "sendCard requests agents' pages posted in the range (requests: the workstation does not acknowledge delivery). With a channel filter, those posted during a session of that channel.", (_t, c) => c.cards_sent, fmtCount],
];

// Suggestions for the agent filter: the agents of the range, as the overview's agents report lists them.
function fillAgentNames(agents) {
  $("agent-list").replaceChildren(...agents.filter((a) => a.agent_email).map((a) => el("option", { value: a.agent_email })));
}

function drawOverviewCharts(report, tz) {
  const buckets = report.buckets;
  const xs = buckets.map((b) => Date.parse(b.start) / 1000);
  const answered = buckets.map((b) => b.answered);
  const answeredOrNot = buckets.map((b) => b.answered + b.not_answered);
  const offered = buckets.map((b) => b.offered);
  const bars = barPaths({ size: [0.7, 60] });
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

export async function renderOverview(state, r, isCurrent) {
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
