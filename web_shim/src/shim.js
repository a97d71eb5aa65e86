// The CallTrail shim: records the CCC pop-up page's hash and its ccc-sdk messages, and delivers them to
// CallTrail (wire format v1, docs/protocol.md). What it guarantees and why it is built so: docs/shim.md; which
// module holds what: web_shim/README.md.
//
// It runs inside someone else's page, so: every entry point is wrapped (guard.js), its only global is
// `CallTrail`, a second copy does nothing, and a hash change costs a push onto an array; storage and network
// wait for a timer. The other modules' top level only declares (functions, constants, empty state): what
// reads the page or calls the browser runs from here, inside the guard, after the check for a first copy.
import { readConfig } from "./config.js";
import { flush, hide, shown } from "./delivery.js";
import { guard } from "./guard.js";
import { captureHash } from "./hash.js";
import { captureMessages } from "./messages.js";
import { openQueue, release } from "./queue.js";

guard(() => {
  const w = window;
  if (w.CallTrail) return;
  const doc = document;
  readConfig(doc);
  openQueue();
  captureMessages(w);
  captureHash();

  addEventListener(
    "pagehide",
    guard(() => {
      release(1);
      hide();
    }),
  );
  addEventListener(
    "pageshow",
    guard((e) => {
      release(0);
      if (e.persisted) flush();
    }),
  );
  doc.addEventListener("visibilitychange", guard(() => (doc.visibilityState === "hidden" ? hide() : shown())));
  addEventListener("online", guard(flush));
})();
