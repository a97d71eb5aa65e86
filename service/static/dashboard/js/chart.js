// The one place that uses uPlot. It is vendored as an IIFE that defines the global uPlot: loaded by a classic
// deferred script, it runs before any module, since deferred and module scripts run in document order.

import { $ } from "./dom.js";

const HEIGHT = 220;
const charts = {};

function chartWidth(node) {
  return Math.max(280, Math.floor(node.clientWidth || node.parentElement.clientWidth || 400));
}

// Draws chart `name` into node (its id is chart-<name>), replacing what was drawn there before.
export function drawChart(name, node, options, data) {
  if (charts[name]) charts[name].destroy();
  node.replaceChildren();
  charts[name] = new uPlot({ width: chartWidth(node), height: HEIGHT, ...options }, data, node);
  node.dataset.drawn = "true";
}

// Time axis labels in the chosen time zone, not the browser's.
export function xAxis(tz) {
  return { tzDate: (ts) => uPlot.tzDate(new Date(ts * 1000), tz) };
}

export function barPaths(options) {
  return uPlot.paths.bars(options);
}

export function resizeChartsWithWindow() {
  let timer = 0;
  window.addEventListener("resize", () => {
    clearTimeout(timer);
    timer = setTimeout(() => {
      for (const [name, chart] of Object.entries(charts)) {
        const node = $(`chart-${name}`);
        if (node && !node.closest("[hidden]")) chart.setSize({ width: chartWidth(node), height: HEIGHT });
      }
    }, 150);
  });
}
