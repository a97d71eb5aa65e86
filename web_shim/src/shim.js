// The CallTrail shim: records the CCC pop-up page's hash and its ccc-sdk messages, and delivers them to
// CallTrail (wire format v1, docs/protocol.md). What it guarantees and why it is built so: docs/shim.md.
//
// It runs inside someone else's page, so: every entry point is wrapped (nothing it does may throw into the
// page or write to its console), its only global is `CallTrail`, a second copy does nothing, and a hash
// change costs a push onto an array; storage and network wait for a timer.

const BATCH_DELAY_MS = 500;
// Browsers give fetch keepalive and sendBeacon 64 KiB in flight in all; a small batch leaves most of it to
// the beacons sent when the page goes away while a request is still out.
const BATCH_BYTES = 16384;
const BATCH_EVENTS = 100;
// The service refuses bodies over 64 KiB: a bigger event could never be delivered, so it is not queued.
const EVENT_BYTES = 60000;
// Per page, in memory and in localStorage: the oldest events go first past either limit.
const QUEUE_EVENTS = 500;
const QUEUE_CHARS = 262144;
const MAX_AGE_MS = 7 * 864e5;
// A tab stamps the pages it sends for at every attempt (90 s apart at most, more when the browser throttles a
// hidden tab); a page stamped longer ago than this, or released at pagehide, is taken over by the next tab of
// the site that looks.
const LEASE_MS = 3e5;
const RETRY_BASE_MS = 1000;
const RETRY_MAX_MS = 6e4;
// A request the network never answers would stop the queue for good.
const REQUEST_TIMEOUT_MS = 3e4;
// A batch that keeps failing with 500 (a bug the service logs) would block everything behind it forever: it is
// sent alone from this many failures on, and dropped (a seq gap shows the loss) when it fails alone again.
const ISOLATE_AFTER = 4;

const guard =
  (f) =>
  (...args) => {
    try {
      return f(...args);
    } catch (e) {}
  };

guard(() => {
  const w = window;
  if (w.CallTrail) return;
  const doc = document;
  const script = doc.currentScript || doc.querySelector("script[data-site]") || {};
  const data = script.dataset || {};
  const site = data.site;
  const base = data.endpoint || (script.src && new URL(script.src).origin);
  const endpoint = base && base.replace(/\/$/, "") + "/v1/events";
  const realParent = w.parent;
  const now = () => Date.now();
  // Both run on every hash change: a Blob or one crypto call per digit would cost 0.1 ms each.
  const encoder = new TextEncoder();
  const bytes = (s) => encoder.encode(s).length;
  // UUIDv7 (RFC 9562): 48 bits of time in ms, then 74 random bits. Ids made at about the same time sort
  // together, so the database's unique index on event ids takes them at one end; random (v4) ids made
  // SQLite write a page of that index per event: 2.6 times the time of a row (docs/benchmarks.md).
  const uuid = () => {
    const t = now().toString(16).padStart(12, "0");
    const random = crypto.getRandomValues(new Uint8Array(19));
    let i = 0;
    return `${t.slice(0, 8)}-${t.slice(8)}-7` +
      "000-8000-100000000000".replace(/[018]/g, (c) => (c ^ (random[i++] & (15 >> (c / 4)))).toString(16));
  };
  const idOf = (s) => s.slice(7, 43); // every queued event is a JSON string that starts {"id":"<uuid>"

  const pageId = uuid();
  // A queue per page load: this one's, and those this tab took over from closed tabs.
  const pages = { [pageId]: { u: location.href.split("#")[0].slice(0, 2048), e: [] } };
  const own = pages[pageId];
  const inFlight = new Set();
  const beaconed = new Set();
  let seq = 0;
  let timer = 0;
  let busy = 0;
  let attempt = 0;
  let released = 0;
  let notBefore = 0; // no request before this time: the backoff, or the service's Retry-After

  // localStorage throws in a cross-site iframe when third-party storage is blocked: memory is then all
  // there is. Keys are calltrail:<site>:<page id>; values are "<lease>\n<url>\n<event>\n<event>...".
  const prefix = "calltrail:" + site + ":";
  const store = guard(() => {
    const s = w.localStorage;
    s.getItem(prefix);
    return s;
  })();

  const save = guard((id) => {
    const page = pages[id];
    if (!store) return;
    if (page.e.length) store.setItem(prefix + id, [released ? 0 : now(), page.u, ...page.e].join("\n"));
    else {
      store.removeItem(prefix + id);
      if (id !== pageId) delete pages[id];
    }
  });
  const saveAll = () => Object.keys(pages).forEach(save);
  // Pages taken over from closed tabs first: their events are the oldest.
  const order = () => Object.keys(pages).reverse();

  const adopt = () =>
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

  const enqueue = (page, event) => {
    let chars = 0;
    page.e.push(event);
    page.e.forEach((s) => (chars += s.length + 1));
    while (page.e.length > QUEUE_EVENTS || chars > QUEUE_CHARS) chars -= page.e.shift().length + 1;
  };

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

  const dequeue = (id, ids) => {
    const page = pages[id];
    if (!page) return;
    page.e = page.e.filter((s) => !ids.has(idOf(s)) || (beaconed.delete(s) && 0));
    save(id);
  };

  const schedule = (ms) => {
    if (!timer) timer = setTimeout(guard(flush), Math.max(ms, notBefore - now()));
  };

  const flush = () => {
    clearTimeout(timer);
    timer = 0;
    if (busy) return;
    saveAll(); // also the lease's heartbeat
    adopt();
    const ids = order();
    // After a failure the next page goes first, so that one page's failing batch cannot starve the others.
    if (attempt) ids.push(ids.shift());
    for (const id of ids) {
      const events = pick(id, inFlight).slice(0, attempt < ISOLATE_AFTER ? BATCH_EVENTS : 1);
      if (!events.length) continue;
      let wait = 0;
      const signal = AbortSignal.timeout && AbortSignal.timeout(REQUEST_TIMEOUT_MS);
      const sent = fetch(endpoint, { method: "POST", body: body(id, events), keepalive: true, signal });
      busy = 1; // only now: a fetch that threw must not leave the queue stuck
      events.forEach((s) => inFlight.add(s));
      sent
        .then((r) =>
          r.ok
            ? r.json().then((answer) => {
                // Accepted, duplicate and rejected all leave the queue; an event not named stays.
                dequeue(id, new Set(answer.results.map((result) => result.id)));
                attempt = 0;
              })
            : (r.status < 500 && r.status !== 429) || (r.status === 500 && attempt > ISOLATE_AFTER)
              ? dequeue(id, new Set(events.map(idOf)), (attempt = 0)) // sending it again cannot help
              : Promise.reject(r.headers.get("Retry-After")),
        )
        .catch((retryAfter) => {
          wait = Math.max(
            retryAfter * 1000 || 0,
            Math.min(RETRY_MAX_MS, RETRY_BASE_MS * 2 ** attempt++) * (0.5 + Math.random()),
          );
        })
        .then(
          guard(() => {
            busy = 0;
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

  // The page is going away, or may be: what is not already on its way goes by beacon. A beacon's fate is
  // unknown, so its events stay queued (and stored) until a response names them: a resend is a duplicate.
  const hide = (leaving) => {
    released = leaving;
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

  const record = (type, fields) => {
    if (!endpoint || !site) return;
    const event = JSON.stringify({ id: uuid(), seq: ++seq, ts: now(), type, ...fields });
    // Too big to send: dropped, and its seq stays unused so the gap shows the loss.
    if (bytes(event) > EVENT_BYTES) return;
    enqueue(own, event);
    schedule(BATCH_DELAY_MS);
  };
  const note = guard(
    (message) => message && message.source === "ccc-sdk" && record("message", { data: message }),
  );

  const post = (event, message) => {
    const envelope = { source: "ccc-sdk", payload: { event, message } };
    realParent.postMessage(envelope, "*");
    note(envelope);
    return true;
  };
  w.CallTrail = {
    post: guard(post),
    callOut: guard((phoneNumber, desc) =>
      post("callOut", desc === undefined ? { phoneNumber } : { phoneNumber, desc }),
    ),
    sendCard: guard((card) => post("sendCard", card)),
  };

  if (data.capture === "parent" && realParent !== w) {
    // Opt-in: the page's own window.parent becomes a proxy whose postMessage forwards, then records. What it
    // cannot see (window.top, references taken before this ran) is in docs/shim.md.
    const send = (...args) => {
      const result = realParent.postMessage(...args);
      note(args[0]);
      return result;
    };
    const proxy = new Proxy(realParent, {
      get: (target, key) =>
        key === "postMessage" ? send : typeof (key = target[key]) === "function" ? key.bind(target) : key,
      set: (target, key, value) => {
        target[key] = value;
        return true;
      },
    });
    w.parent = proxy;
    // Keeps `event.source === window.parent` true for the parent's replies. Capturing at the target runs
    // before the page's own (bubbling) listeners.
    addEventListener(
      "message",
      guard((e) => e.source === realParent && Object.defineProperty(e, "source", { value: proxy })),
      true,
    );
  }

  record("hash", { trigger: "load", hash: location.hash });
  addEventListener(
    "hashchange",
    guard((e) => record("hash", { trigger: "hashchange", hash: new URL(e.newURL).hash })),
  );
  addEventListener("pagehide", guard(() => hide(1)));
  addEventListener(
    "pageshow",
    guard((e) => {
      released = 0;
      if (e.persisted) flush();
    }),
  );
  doc.addEventListener(
    "visibilitychange",
    // Back in view: what was beaconed while hidden may have failed, so the next hide beacons it again.
    guard(() => (doc.visibilityState === "hidden" ? hide(released) : beaconed.clear())),
  );
  addEventListener("online", guard(flush));
})();
