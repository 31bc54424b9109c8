// Live updates for the run pages. Every page is complete without this script: it only swaps in
// fresher server-rendered HTML (the run list, a run) or appends a growing log, while something runs.
"use strict";
(function () {
  const POLL_MS = 1000;

  function later(fn, ms) { window.setTimeout(fn, ms || POLL_MS); }

  // A run or the run list: <main data-live-url> is re-rendered by the server; swap it while it is live.
  function followMain(main) {
    const url = main.dataset.liveUrl;
    const every = parseInt(main.dataset.liveMs || "1000", 10);
    const isLive = () => { const s = main.querySelector(".live-state"); return s && s.dataset.live === "1"; };
    async function poll() {
      try {
        const r = await fetch(url, { headers: { Accept: "text/html" }, cache: "no-store" });
        if (r.ok) {
          const html = await r.text();
          // Never swap the form a user is filling in (a token typed, a branch being chosen).
          const focused = document.activeElement;
          const busy = focused && main.contains(focused) &&
            (focused.tagName === "SELECT" || (focused.tagName === "INPUT" && focused.value));
          if (!busy) { main.innerHTML = html; tailsToEnd(main); }
        }
      } catch (e) { /* the service restarting: try again */ }
      if (isLive()) later(poll, every);
    }
    if (isLive()) later(poll, every);
  }

  // A job's log: ask for what changed since the last tick and replace the lines from there on.
  function followLog(pre) {
    let epoch = pre.dataset.epoch, tick = pre.dataset.tick;
    const first = parseInt(pre.dataset.first || "0", 10);
    async function poll() {
      let live = true;
      try {
        const atBottom = window.innerHeight + window.scrollY >= document.body.scrollHeight - 40;
        const q = new URLSearchParams({ format: "json", epoch: epoch, tick: tick, first: first });
        const r = await fetch(pre.dataset.url + "&" + q.toString(), { cache: "no-store" });
        if (r.ok) {
          const d = await r.json();
          const from = Math.max(d.from - first, 0);
          while (pre.children.length > from) pre.removeChild(pre.lastChild);
          for (const html of d.lines) {
            const div = document.createElement("div");
            div.className = "ln";
            div.innerHTML = html;  // rendered and escaped by the server (ci_runner.termlog)
            pre.appendChild(div);
          }
          epoch = d.epoch; tick = d.tick; live = d.live;
          if (atBottom) window.scrollTo(0, document.body.scrollHeight);
          if (!live) {
            pre.dataset.live = "0";
            const note = document.querySelector(".live-note");
            if (note) note.textContent = "the job has finished";
          }
        }
      } catch (e) { /* try again */ }
      if (live) later(poll);
    }
    later(poll);
  }

  // A failed job's tail is read from its end (where the error is); without this script it shows its start.
  function tailsToEnd(root) {
    for (const pre of root.querySelectorAll("pre.tail")) pre.scrollTop = pre.scrollHeight;
  }

  document.addEventListener("DOMContentLoaded", function () {
    tailsToEnd(document);
    const main = document.querySelector("main[data-live-url]");
    if (main) followMain(main);
    const pre = document.querySelector("pre#log[data-live='1']");
    if (pre) followLog(pre);
  });
})();
