// The page's URL hash, where the workstation announces every call and chat: the one it was loaded with (no
// hashchange fires for it; recorded even when empty, it marks the load and takes seq 1), then every change.
import { guard } from "./guard.js";
import { record } from "./record.js";

export const captureHash = () => {
  record("hash", { trigger: "load", hash: location.hash });
  addEventListener(
    "hashchange",
    // The event's newURL rather than location: two quick changes are two distinct events.
    guard((e) => record("hash", { trigger: "hashchange", hash: new URL(e.newURL).hash })),
  );
};
