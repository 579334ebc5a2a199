// The console's only script: shows times in the reader's zone. Pages work without it.
"use strict";
document.addEventListener("DOMContentLoaded", () => {
  for (const el of document.querySelectorAll("time[data-epoch]")) {
    const at = new Date(Number(el.dataset.epoch) * 1000);
    if (!Number.isNaN(at.getTime())) {
      el.title = el.textContent;
      el.textContent = at.toLocaleString();
    }
  }
});
