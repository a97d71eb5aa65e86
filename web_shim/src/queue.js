// The queue: the events the service has not answered for yet, one list per page load (this one's, and those
// this tab took over from closed tabs), kept in localStorage when the browser allows it.
//
// localStorage throws in a cross-site iframe when third-party storage is blocked: memory is then all there
// is. Keys are calltrail:<site>:<page id>; values are "<lease>\n<url>\n<event>\n<event>...".
import { site } from "./config.js";
import { guard } from "./guard.js";
import { idOf, now, uuid } from "./ids.js";
import { LEASE_MS, MAX_AGE_MS, QUEUE_CHARS, QUEUE_EVENTS } from "./limits.js";

// Page id -> { u: the page's URL without the hash, e: its events, oldest first, as the JSON they are sent
// as }. Delivery reads it; only this module changes it.
export const pages = {};
let ownId; // this page load's, set by openQueue
let prefix; // of this site's keys
let store; // localStorage, or undefined when the browser refuses it
let released = 0; // from pagehide to pageshow: stored queues carry lease 0, for the next load to take at once

export const openQueue = () => {
  ownId = uuid();
  pages[ownId] = { u: location.href.split("#")[0].slice(0, 2048), e: [] };
  prefix = "calltrail:" + site + ":";
  store = guard(() => {
    const s = localStorage;
    s.getItem(prefix);
    return s;
  })();
};

export const release = (leaving) => (released = leaving);

const save = guard((id) => {
  const page = pages[id];
  if (!store) return;
  if (page.e.length) store.setItem(prefix + id, [released ? 0 : now(), page.u, ...page.e].join("\n"));
  else {
    store.removeItem(prefix + id);
    if (id !== ownId) delete pages[id];
  }
});

// Also the lease's heartbeat.
export const saveAll = () => Object.keys(pages).forEach(save);

// Pages taken over from closed tabs first: their events are the oldest.
export const order = () => Object.keys(pages).reverse();

// Takes over this site's stored queues whose lease has run out or was released.
export const adopt = () =>
  store &&
  Object.keys(store).forEach(
    guard((key) => {
      const id = key.slice(prefix.length);
      if (!key.startsWith(prefix) || pages[id]) return;
      const [lease, u, ...e] = store.getItem(key).split("\n");
      if (lease > now() - LEASE_MS) return;
      pages[id] = { u, e: e.filter((s) => JSON.parse(s).ts > now() - MAX_AGE_MS) };
      save(id); // the claim: our lease now, so other tabs leave it alone
    }),
  );

// Onto this page's queue; written to storage at the next flush, not here (a hash change must stay cheap).
export const enqueue = (event) => {
  const page = pages[ownId];
  let chars = 0;
  page.e.push(event);
  page.e.forEach((s) => (chars += s.length + 1));
  while (page.e.length > QUEUE_EVENTS || chars > QUEUE_CHARS) chars -= page.e.shift().length + 1;
};

// The service answered for these: out of the queue, in memory and in storage.
export const dequeue = (id, ids) => {
  const page = pages[id];
  if (!page) return;
  page.e = page.e.filter((s) => !ids.has(idOf(s)));
  save(id);
};
