// The embedding's settings, from the tag that loaded the shim (docs/shim.md, "Embedding"). Set once, by
// readConfig at start, while document.currentScript is still that tag; only read after that.
export let site; // data-site: the site key
export let endpoint; // where events go: <data-endpoint, or the origin the script came from>/v1/events
export let capture; // data-capture: "parent" also records the page's own window.parent.postMessage calls

export const readConfig = (doc) => {
  const script = doc.currentScript || doc.querySelector("script[data-site]") || {};
  const data = script.dataset || {};
  site = data.site;
  const base = data.endpoint || (script.src && new URL(script.src).origin);
  endpoint = base && base.replace(/\/$/, "") + "/v1/events";
  capture = data.capture;
};
