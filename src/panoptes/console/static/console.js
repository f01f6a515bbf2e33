// Panoptes console: small progressive enhancements. Every page works without them.
"use strict";

(function () {
  const main = document.getElementById("main");
  const csrf = main ? main.dataset.csrf || "" : "";

  function post(url, fields) {
    return fetch(url, {
      method: "POST",
      headers: { "X-CSRF-Token": csrf },
      body: new URLSearchParams(fields),
      credentials: "same-origin",
    });
  }

  function el(tag, attrs, text) {
    const node = document.createElement(tag);
    Object.entries(attrs || {}).forEach(([k, v]) => node.setAttribute(k, v));
    if (text !== undefined) node.textContent = text;
    return node;
  }

  // --- JSON paths -> places in the text ----------------------------------------------
  // Where each value of a JSON text starts, by the path the checker reports
  // ("nodeGraph.edges[0].consumer"). A small parser of our own; it stops at a syntax
  // error and keeps what it found before.
  function jsonOffsets(text) {
    const found = {};
    let i = 0;
    const ws = () => { while (i < text.length && " \t\r\n".includes(text[i])) i++; };
    const str = () => {
      const start = ++i;
      while (i < text.length && text[i] !== '"') i += text[i] === "\\" ? 2 : 1;
      return JSON.parse('"' + text.slice(start, i++) + '"');
    };
    const value = (path) => {
      ws();
      found[path || "$"] = i;
      if (text[i] === "{") {
        i++; ws();
        while (text[i] === '"') {
          const key = str(); ws(); i++; // ':'
          value(path ? `${path}.${key}` : key); ws();
          if (text[i] === ",") { i++; ws(); }
        }
        i++;
      } else if (text[i] === "[") {
        i++; ws();
        let n = 0;
        while (i < text.length && text[i] !== "]") {
          value(`${path}[${n++}]`); ws();
          if (text[i] === ",") i++; else break;
        }
        i++;
      } else if (text[i] === '"') {
        str();
      } else {
        while (i < text.length && !",}] \t\r\n".includes(text[i])) i++;
      }
    };
    try { value(""); } catch (e) { /* keep the places found so far */ }
    return found;
  }

  function goTo(textarea, path) {
    const at = jsonOffsets(textarea.value)[path];
    if (at === undefined) return;
    textarea.focus();
    textarea.setSelectionRange(at, at);
    // Scroll the line into view: the textarea's line height times the line number.
    const line = textarea.value.slice(0, at).split("\n").length - 1;
    const height = parseFloat(getComputedStyle(textarea).lineHeight) || 18;
    textarea.scrollTop = Math.max(0, line * height - textarea.clientHeight / 2);
  }

  // --- deploy wizard: graph.json checked as you type ------------------------------
  const graph = document.getElementById("graph");
  const problems = document.getElementById("problems");
  if (graph && problems && graph.dataset.validate) {
    let timer = null;
    let seq = 0;
    const show = (result) => {
      problems.replaceChildren();
      const errors = result.problems.filter((p) => p.severity === "error");
      if (result.problems.length === 0) {
        problems.append(el("p", { class: "ok" }, "graph.json is valid."));
        return;
      }
      problems.append(el("p", { class: errors.length ? "error" : "ok" },
        errors.length ? `graph.json has ${errors.length} error(s):` : "graph.json is valid, with warnings:"));
      const list = el("ul");
      result.problems.forEach((p) => {
        const item = el("li", { class: "problem-" + p.severity });
        const jump = el("button", { type: "button", class: "path", "aria-label": `Go to ${p.path} in graph.json` }, p.path);
        jump.addEventListener("click", () => goTo(graph, p.path));
        item.append(jump, " " + p.message);
        if (p.hint) item.append(" ", el("em", {}, "Fix: " + p.hint));
        list.append(item);
      });
      problems.append(list);
    };
    const check = () => {
      const mine = ++seq;
      post(graph.dataset.validate, { graph: graph.value })
        .then((r) => r.json())
        .then((result) => { if (mine === seq && result.problems) show(result); })
        .catch(() => {});
    };
    graph.addEventListener("input", () => {
      clearTimeout(timer);
      timer = setTimeout(check, 400);
    });
    const file = document.getElementById("graph-file");
    if (file) {
      file.addEventListener("change", () => {
        const chosen = file.files && file.files[0];
        if (!chosen) return;
        chosen.text().then((text) => { graph.value = text; check(); });
      });
    }
    if (graph.value.trim()) check();
  }

  // --- provisioning archive: the credential's time left -----------------------------
  document.querySelectorAll("[data-countdown]").forEach((node) => {
    let left = parseInt(node.dataset.countdown, 10);
    const tick = () => {
      if (left <= 0) {
        node.textContent = "expired";
        const link = document.getElementById("download-archive");
        if (link) link.remove();
        return;
      }
      node.textContent = `${Math.floor(left / 60)} min ${left % 60} s`;
      left -= 1;
      setTimeout(tick, 1000);
    };
    tick();
  });

  // --- confirmations ------------------------------------------------------------------
  document.querySelectorAll("input[data-confirm]").forEach((input) => {
    const button = input.form.querySelector("[data-confirm-button]");
    const sync = () => { button.disabled = input.value !== input.dataset.confirm; };
    input.addEventListener("input", sync);
    sync();
  });
  document.querySelectorAll("[data-confirm-text]").forEach((button) => {
    button.form.addEventListener("submit", (event) => {
      if (!window.confirm(button.dataset.confirmText)) event.preventDefault();
    });
  });

  // --- application instance: status, progress, logs ------------------------------------
  const status = document.getElementById("status");
  if (status && status.dataset.statusUrl) {
    const order = Array.from(status.querySelectorAll(".progress li")).map((li) => li.dataset.status);
    const refresh = () => {
      fetch(status.dataset.statusUrl, { credentials: "same-origin" })
        .then((r) => (r.ok ? r.json() : null))
        .then((s) => {
          if (!s) return;
          const badge = document.getElementById("app-status");
          const changed = badge.textContent !== s.Status;
          badge.textContent = s.Status;
          document.getElementById("app-status-description").textContent = s.StatusDescription;
          document.getElementById("app-health").textContent = s.HealthStatus;
          Object.entries(s.Nodes).forEach(([id, value]) => {
            const cell = document.querySelector(`[data-node-status="${CSS.escape(id)}"]`);
            if (cell) cell.textContent = value;
          });
          const at = order.indexOf(s.Status);
          status.querySelectorAll(".progress li").forEach((li, i) => {
            li.className = i < at ? "done" : i === at ? "current" : "";
            if (i === at) li.setAttribute("aria-current", "step"); else li.removeAttribute("aria-current");
          });
          // The live video's place is drawn by the server once the output exists.
          if (changed && document.getElementById("live-video-missing") && s.HealthStatus === "RUNNING") {
            window.location.reload();
          }
        })
        .catch(() => {});
    };
    setInterval(refresh, 3000);
  }

  const logs = document.getElementById("logs");
  const follow = document.getElementById("log-follow");
  const lines = document.getElementById("log-lines");
  if (logs && follow && lines) {
    let timer = null;
    const poll = () => {
      const form = logs.querySelector("form");
      const query = new URLSearchParams(new FormData(form));
      if (lines.dataset.token) query.set("token", lines.dataset.token);
      else if (lines.dataset.after) query.set("after", lines.dataset.after);
      fetch(`${logs.dataset.logsUrl}?${query}`, { credentials: "same-origin" })
        .then((r) => (r.ok ? r.json() : null))
        .then((page) => {
          if (!page) return;
          page.events.forEach((e) => {
            lines.append(document.createTextNode(`${e.time} [${e.stream}] ${e.message}\n`));
          });
          if (page.events.length) {
            const empty = document.getElementById("log-empty");
            if (empty) empty.remove();
            lines.scrollTop = lines.scrollHeight;
          }
          if (page.events.length) lines.dataset.after = String(page.events[page.events.length - 1].ms + 1);
          lines.dataset.token = page.token || "";
        })
        .catch(() => {})
        .finally(() => { if (follow.checked) timer = setTimeout(poll, 2000); });
    };
    follow.addEventListener("change", () => {
      clearTimeout(timer);
      if (follow.checked) poll();
    });
  }
})();
