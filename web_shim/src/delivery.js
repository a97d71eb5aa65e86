// Delivery: batches from the queue to POST /v1/events (wire format v1, docs/protocol.md), one request at a
// time per tab, retried with backoff; beacons when the page goes away.
import { endpoint, site } from "./config.js";
import { guard } from "./guard.js";
import { bytes, idOf, now } from "./ids.js";
import {
  BATCH_BYTES,
  BATCH_EVENTS,
  ISOLATE_AFTER,
  REQUEST_TIMEOUT_MS,
  RETRY_BASE_MS,
  RETRY_MAX_MS,
} from "./limits.js";
import { adopt, dequeue, order, pages, saveAll } from "./queue.js";

const inFlight = new Set(); // the events of the request that is out; empty when none is
// Beaconed since the last answer, or since the page was last in view. A beacon's fate is unknown, so these
// stay queued (and stored) until an answer names them, a resend being a duplicate; this set only keeps the
// next beacon from taking them again.
const beaconed = new Set();
let timer = 0; // the next flush, when one is set
let failures = 0; // in a row; an answer that settles the batch resets it
let notBefore = 0; // no request before this time: the backoff, or the service's Retry-After

// The oldest events of a page that fit one request, skipping those `skip` says are already on their way.
const pick = (id, skip) => {
  const out = [];
  let size = 0;
  for (const s of pages[id].e) {
    if (skip.has(s)) continue;
    size += bytes(s) + 1;
    if (out.length && (size > BATCH_BYTES || out.length >= BATCH_EVENTS)) break;
    out.push(s);
  }
  return out;
};

const body = (id, events) =>
  `{"v":1,"site":${JSON.stringify(site)},"sent_at":${now()},"page":{"id":"${id}","url":${JSON.stringify(
    pages[id].u,
  )}},"events":[${events}]}`;

// A flush in `ms`, or later if the backoff says so; none is added while one is set.
export const schedule = (ms) => {
  if (!timer) timer = setTimeout(guard(flush), Math.max(ms, notBefore - now()));
};

export const flush = () => {
  clearTimeout(timer);
  timer = 0;
  if (inFlight.size) return;
  saveAll();
  adopt();
  const ids = order();
  // After a failure the next page goes first, so that one page's failing batch cannot starve the others.
  if (failures) ids.push(ids.shift());
  for (const id of ids) {
    const events = pick(id, inFlight).slice(0, failures < ISOLATE_AFTER ? BATCH_EVENTS : 1);
    if (!events.length) continue;
    let wait = 0;
    const signal = AbortSignal.timeout && AbortSignal.timeout(REQUEST_TIMEOUT_MS);
    const sent = fetch(endpoint, { method: "POST", body: body(id, events), keepalive: true, signal });
    // Only now: a fetch that threw must not leave the queue stuck.
    events.forEach((s) => inFlight.add(s));
    sent
      .then((r) =>
        r.ok
          ? r.json().then((answer) => {
              // Accepted, duplicate and rejected all leave the queue; an event not named stays.
              dequeue(id, new Set(answer.results.map((result) => result.id)));
              failures = 0;
            })
          : (r.status < 500 && r.status !== 429) || (r.status === 500 && failures > ISOLATE_AFTER)
            ? dequeue(id, new Set(events.map(idOf)), (failures = 0)) // sending it again cannot help
            : Promise.reject(r.headers.get("Retry-After")),
      )
      .catch((retryAfter) => {
        wait = Math.max(
          retryAfter * 1000 || 0,
          Math.min(RETRY_MAX_MS, RETRY_BASE_MS * 2 ** failures++) * (0.5 + Math.random()),
        );
      })
      .then(
        guard(() => {
          inFlight.clear();
          // What was beaconed meanwhile may have failed too: the next beacon takes it again.
          beaconed.clear();
          notBefore = now() + wait;
          clearTimeout(timer); // a timer set while the request was out would not wait
          timer = 0;
          for (const key in pages) if (pages[key].e.length) return schedule(wait);
        }),
      );
    return;
  }
};

// The page is going away, or may be: what is not already on its way goes by beacon, until the browser
// refuses one (its 64 KiB budget).
export const hide = () => {
  saveAll();
  let room = navigator.sendBeacon;
  for (const id of order()) {
    let events;
    while (room && (events = pick(id, { has: (s) => inFlight.has(s) || beaconed.has(s) })).length) {
      room = navigator.sendBeacon(endpoint, body(id, events));
      if (room) events.forEach((s) => beaconed.add(s));
    }
  }
};

// Back in view: what was beaconed while hidden may have failed, so the next hide beacons it again.
export const shown = () => beaconed.clear();
