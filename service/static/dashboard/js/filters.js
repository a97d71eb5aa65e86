// The filter bar: shows the state it was given, and turns what the user picks into a new URL.

import { BROWSER_TZ } from "./dates.js";
import { $, el } from "./dom.js";
import { INTERVALS, go, stateUrl } from "./state.js";

// The form and the view links follow the URL; r is the range the state resolves to.
export function syncForm(state, r) {
  $("f-preset").value = state.preset;
  $("f-from").value = r.first;
  $("f-to").value = r.last;
  $("f-from").disabled = $("f-to").disabled = state.preset !== "custom";
  $("f-tz").value = state.tz;
  $("f-interval").value = INTERVALS.includes(state.interval) ? state.interval : "auto";
  $("f-channel").value = state.channel;
  $("f-agent").value = state.agent;
  // Every view link (the nav's, and those in a view's text) keeps the filters.
  for (const link of document.querySelectorAll("a[data-view]")) link.href = stateUrl({ ...state, view: link.dataset.view });
  for (const link of document.querySelectorAll("nav a")) {
    if (link.dataset.view === state.view) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
}

function applyFilters(event) {
  if (event) event.preventDefault();
  const preset = $("f-preset").value;
  const changes = {
    preset,
    tz: $("f-tz").value.trim() || BROWSER_TZ,
    interval: $("f-interval").value,
    channel: $("f-channel").value,
    agent: $("f-agent").value.trim(),
  };
  if (preset === "custom") {
    changes.from = $("f-from").value;
    changes.to = $("f-to").value || $("f-from").value;
  }
  go(changes);
}

export function wireFilters() {
  if (typeof Intl.supportedValuesOf === "function") {
    $("tz-list").replaceChildren(...Intl.supportedValuesOf("timeZone").map((tz) => el("option", { value: tz })));
  }
  $("filters").addEventListener("submit", applyFilters);
  for (const id of ["f-preset", "f-interval", "f-channel"]) {
    $(id).addEventListener("change", () => {
      // Custom dates are typed first, then applied with the button.
      if (id === "f-preset" && $("f-preset").value === "custom") {
        $("f-from").disabled = $("f-to").disabled = false;
        $("f-from").focus();
        return;
      }
      applyFilters();
    });
  }
}
