// The read key form: save, forget, change. The key stays in this browser (api.js).

import { forgetKey, saveKey } from "./api.js";
import { $ } from "./dom.js";
import { refreshLive } from "./live.js";
import { rerender } from "./state.js";

export function showKeyForm() {
  $("key-form").hidden = false;
  $("key-input").focus();
}

export function hideKeyForm() {
  $("key-form").hidden = true;
}

export function wireKeyForm() {
  $("key-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const key = $("key-input").value.trim();
    if (!key) return;
    saveKey(key);
    $("key-input").value = "";
    rerender();
    refreshLive();
  });
  $("key-forget").addEventListener("click", () => {
    forgetKey();
    rerender();
  });
  $("key-change").addEventListener("click", showKeyForm);
}
