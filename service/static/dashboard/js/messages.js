// The message box: each failure says what to do about it (docs/dashboard.md lists them).

import { Failure } from "./api.js";
import { $, el } from "./dom.js";
import { showKeyForm } from "./key.js";
import { rerender } from "./state.js";

const KEY_COMMAND = "calltrail keys create --scope read --name dashboard";

export function showMessage(text, { retry = false, kind = "error" } = {}) {
  const box = $("message");
  box.replaceChildren(el("span", { text }));
  if (retry) box.append(" ", el("button", { type: "button", text: "Retry", onclick: () => rerender() }));
  box.dataset.kind = kind;
  box.hidden = false;
}

export function clearMessage() {
  $("message").hidden = true;
  $("message").replaceChildren();
}

export function showFailure(failure) {
  if (!(failure instanceof Failure)) {
    showMessage(`The dashboard failed: ${failure}. Reload the page; if it persists, report it with this text.`, { retry: true });
    return;
  }
  switch (failure.kind) {
    case "nokey":
      showKeyForm();
      showMessage(`Enter a read key to see the dashboard. An administrator creates one with: ${KEY_COMMAND}`, { kind: "info" });
      return;
    case "unauthorized":
      showKeyForm();
      showMessage(`The service refused this key (unknown, revoked, or not a read key). Enter a valid read key; create one with: ${KEY_COMMAND}`);
      return;
    case "down":
      showMessage(`The CallTrail service at ${location.origin} does not answer. Check that "calltrail serve" is running and reachable, then retry.`, { retry: true });
      return;
    case "bad":
      showMessage(`The service rejected the filters: ${failure.message}. Correct them and apply again.`);
      return;
    case "notfound":
      showMessage(`Not found: ${failure.message}. The link may be wrong, or the data was deleted; go back to the overview.`);
      return;
    default:
      showMessage(`The service failed (HTTP ${failure.status}: ${failure.message}). Retry in a moment; if it persists, check the service's log.`, { retry: true });
  }
}
