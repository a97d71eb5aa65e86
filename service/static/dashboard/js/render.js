// The render loop: reads the URL, shows its view, and marks the page busy, ready or failed.

import { BROWSER_TZ, validTz } from "./dates.js";
import { $ } from "./dom.js";
import { syncForm } from "./filters.js";
import { hideKeyForm } from "./key.js";
import { clearMessage, showFailure, showMessage } from "./messages.js";
import { range, readState } from "./state.js";
import { renderAgents } from "./views/agents.js";
import { renderAudit } from "./views/audit.js";
import { renderCalls } from "./views/calls.js";
import { renderCards } from "./views/cards.js";
import { renderCoverage } from "./views/coverage.js";
import { renderOverview } from "./views/overview.js";
import { renderQuality } from "./views/quality.js";
import { renderSession } from "./views/session.js";
import { renderSessions } from "./views/sessions.js";

const RENDERERS = { overview: renderOverview, calls: renderCalls, coverage: renderCoverage, agents: renderAgents, cards: renderCards, sessions: renderSessions,
  audit: renderAudit, quality: renderQuality, session: renderSession };

// Each render has a number; an answer that arrives after a newer render started is dropped (isCurrent).
let generation = 0;

export async function render() {
  const mine = ++generation;
  const isCurrent = () => mine === generation;
  const state = readState();
  const r = range(state);
  syncForm(state, r);
  for (const section of document.querySelectorAll("main > section")) section.hidden = section.dataset.view !== state.view;
  const main = $("main");
  main.setAttribute("aria-busy", "true");
  main.classList.add("loading");
  clearMessage();
  if (!validTz(state.tz)) {
    showMessage(`Unknown time zone "${state.tz}". Pick one from the list (for example ${BROWSER_TZ}) and apply.`);
    main.classList.remove("loading");
    main.setAttribute("aria-busy", "false");
    return;
  }
  try {
    await RENDERERS[state.view](state, r, isCurrent);
    if (isCurrent()) {
      hideKeyForm();
      // Time from navigation to this view drawn: what bench/dashboard.py reports as first render.
      if (!document.body.dataset.readyMs) document.body.dataset.readyMs = String(Math.round(performance.now()));
      document.body.dataset.ready = "true";
    }
  } catch (failure) {
    if (!isCurrent()) return;
    // Numbers from an earlier answer would read as current: show only what to do.
    for (const section of document.querySelectorAll("main > section")) section.hidden = true;
    showFailure(failure);
  } finally {
    if (isCurrent()) {
      main.classList.remove("loading");
      main.setAttribute("aria-busy", "false");
    }
  }
}
