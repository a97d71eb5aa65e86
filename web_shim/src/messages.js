// The ccc-sdk messages: the API (window.CallTrail) that posts them to the workstation, the page's parent, and
// records them; and, opted in with data-capture="parent", the page's own window.parent.postMessage calls.
import { capture } from "./config.js";
import { guard } from "./guard.js";
import { record } from "./record.js";

export const captureMessages = (w) => {
  const realParent = w.parent;
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

  if (capture === "parent" && realParent !== w) {
    // The page's own window.parent becomes a proxy whose postMessage forwards, then records. What it cannot
    // see (window.top, references taken before this ran) is in docs/shim.md.
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
};
