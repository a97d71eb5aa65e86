// Keyset pages: the cursors seen so far, so Previous can go back. They live in memory, not in the URL: a
// shared link opens at the first page.

import { rerender } from "./state.js";

export const PAGE_SIZE = 50;

const pagers = {
  sessions: { cursors: [""], index: 0, key: "" },
  audit: { cursors: [""], index: 0, key: "" },
  coverage: { cursors: [""], index: 0, key: "" },
};

// The pager of a list, back at its first page when the query (key) changed.
export function pagerFor(name, key) {
  const pager = pagers[name];
  if (pager.key !== key) Object.assign(pager, { cursors: [""], index: 0, key });
  return pager;
}

export function updatePager(name, nextCursor) {
  const pager = pagers[name];
  pager.cursors.length = pager.index + 1;
  if (nextCursor) pager.cursors.push(nextCursor);
  const box = document.querySelector(`[data-pager="${name}"]`);
  box.querySelector('[data-page="first"]').disabled = pager.index === 0;
  box.querySelector('[data-page="prev"]').disabled = pager.index === 0;
  box.querySelector('[data-page="next"]').disabled = !nextCursor;
  box.querySelector(".page-label").textContent = `Page ${pager.index + 1}`;
}

export function wirePagers() {
  for (const box of document.querySelectorAll("[data-pager]")) {
    box.addEventListener("click", (event) => {
      const button = event.target.closest("button[data-page]");
      if (!button) return;
      const pager = pagers[box.dataset.pager];
      if (button.dataset.page === "first") pager.index = 0;
      else if (button.dataset.page === "prev") pager.index = Math.max(0, pager.index - 1);
      else if (pager.index + 1 < pager.cursors.length) pager.index += 1;
      rerender();
    });
  }
}
