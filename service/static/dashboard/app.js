// The CallTrail supervisor dashboard: reads the public query API (docs/api.md) with a read key kept in this
// browser, and keeps every filter in the URL so that a view can be shared. Native ES modules under js/, no
// build step, no dependency but the vendored uPlot (window.uPlot). Figures' definitions follow
// docs/metrics.md. This entry only wires the modules together (docs/dashboard.md lists what each holds).

import { resizeChartsWithWindow } from "./js/chart.js";
import { $ } from "./js/dom.js";
import { wireFilters } from "./js/filters.js";
import { wireKeyForm } from "./js/key.js";
import { startLive } from "./js/live.js";
import { wirePagers } from "./js/pager.js";
import { render } from "./js/render.js";
import { readState, setRenderer, stateUrl } from "./js/state.js";

// Views and session links change the URL without reloading the page.
function wireNavigation() {
  document.addEventListener("click", (event) => {
    const link = event.target.closest("a[data-view], a[data-session]");
    if (!link || event.ctrlKey || event.metaKey || event.shiftKey || event.button !== 0) return;
    event.preventDefault();
    history.pushState(null, "", link.href);
    render();
    $("main").focus({ preventScroll: true });
  });
  window.addEventListener("popstate", render);
}

function init() {
  setRenderer(render);
  resizeChartsWithWindow();
  wireFilters();
  wireKeyForm();
  wireNavigation();
  wirePagers();
  history.replaceState(null, "", stateUrl(readState()));
  render();
  startLive();
}

init();
