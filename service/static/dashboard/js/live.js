// The live strip: ringing now, connected now, longest ring, from /v1/live every few seconds.

import { api, readKey } from "./api.js";
import { $ } from "./dom.js";
import { fmtCount, fmtSeconds, fmtTime } from "./format.js";
import { readState } from "./state.js";

const LIVE_EVERY_MS = 5000;

let inFlight = false;

export async function refreshLive() {
  // One request at a time: on a slow service, answers arriving out of order would show older figures.
  if (inFlight || document.hidden || !readKey()) return;
  inFlight = true;
  try {
    const live = await api("/v1/live");
    $("live-ringing").textContent = fmtCount(live.ringing_now);
    $("live-connected").textContent = fmtCount(live.connected_now);
    $("live-longest").textContent = fmtSeconds(live.longest_ring_s);
    for (const [id, value] of [["live-ringing", live.ringing_now], ["live-connected", live.connected_now], ["live-longest", live.longest_ring_s]]) {
      $(id).dataset.value = value == null ? "" : value;
    }
    $("live-status").textContent = `as of ${fmtTime(live.as_of, readState().tz).slice(11)}`;
    $("live").classList.remove("stale");
  } catch {
    $("live-status").textContent = "live figures unavailable";
    $("live").classList.add("stale");
  } finally {
    inFlight = false;
  }
}

export function startLive() {
  refreshLive();
  setInterval(refreshLive, LIVE_EVERY_MS);
}
