// Element helpers. Text from the API only ever goes through textContent or an attribute, never markup.

import { fmtCount } from "./format.js";
import { readState, stateUrl } from "./state.js";

export const $ = (id) => document.getElementById(id);

export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value == null || value === false) continue;
    if (name === "text") node.textContent = value;
    else if (name === "onclick") node.addEventListener("click", value);
    else node.setAttribute(name, value === true ? "" : String(value));
  }
  for (const child of children) if (child != null) node.append(child);
  return node;
}

// A table cell with the raw value kept in data-value, so that what is shown can be checked against the API.
export function cell(value, format = fmtCount) {
  return el("td", { class: "num", "data-value": value == null ? "" : value, text: format(value) });
}

export function table(node, headings, rows, emptyText) {
  node.replaceChildren();
  node.append(el("thead", {}, el("tr", {}, ...headings.map((h) => (h instanceof Node ? h : el("th", { scope: "col", text: h }))))));
  const body = el("tbody");
  if (rows.length === 0) {
    body.append(el("tr", { class: "empty-row" }, el("td", { colspan: headings.length, text: emptyText })));
  }
  for (const row of rows) body.append(row);
  node.append(body);
}

// A headline figure, focusable, with its definition (docs/metrics.md) as a tooltip.
export function figure(key, label, definition, value, format) {
  const tip = `def-${key}`;
  return el("div", { class: "figure", tabindex: 0, "data-figure": key, "aria-describedby": tip },
    el("dt", { text: label }),
    el("dd", { "data-value": value == null ? "" : value, text: format(value) }),
    el("p", { class: "def", role: "tooltip", id: tip, text: definition }));
}

export function sessionLink(id) {
  if (!id) return document.createTextNode("–");
  const a = el("a", { href: stateUrl({ ...readState(), view: "session", id }), "data-session": id, text: id.slice(0, 8) });
  return a;
}
