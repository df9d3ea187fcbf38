// slotguard's cluster picture: draws node cards, slot bars, messages in flight, budgets,
// history and an SVG sequence diagram from the JSON of `slotguard_check::picture`.
// One renderer for three pages, chosen by the boot object: `explore` (a path of the model,
// fetched from /api/steps/...), `report` (a `check --html` report, inlined), `live` (a running
// cluster, polled from /api/live). No network access beyond the page's own server.
"use strict";

const PALETTE = ["#3b6fd6", "#d9822b", "#2f9e6e", "#9b51c9", "#d64550", "#1f9bb3",
  "#8c6d1f", "#c2489b", "#5b7a29", "#6b5fd3", "#b5532e", "#2b7f9e"];

function color(id) {
  const n = parseInt(String(id).replace(/^n/, ""), 10);
  return Number.isFinite(n) ? PALETTE[n % PALETTE.length] : "#888";
}

function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k === "class") el.className = v;
    else if (k === "style") el.style.cssText = v;
    else if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else el.setAttribute(k, v);
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

// The SVG namespace, as the HTML parser assigns it (the page names no URL at all).
const SVG = (() => { const d = document.createElement("div"); d.innerHTML = "<svg></svg>"; return d.firstChild.namespaceURI; })();
function s(tag, attrs, text) {
  const el = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs || {})) el.setAttribute(k, v);
  if (text !== undefined) el.textContent = text;
  return el;
}

function $(id) { return document.getElementById(id); }
function fill(id, ...children) { const el = $(id); el.replaceChildren(...children.flat()); return el; }
function opt(v) { return v === null || v === undefined ? "?" : v; }

// ---- node cards ----------------------------------------------------------------------------

function slotBar(card, slotCount) {
  const bar = h("div", { class: "slotbar", title: "slot owners in " + card.id + "'s view" });
  for (const run of card.slots) {
    const n = run.end - run.start + 1;
    const range = run.start === run.end ? String(run.start) : run.start + "-" + run.end;
    const seg = h("div", {
      class: run.owner ? "owned" : "unbound",
      style: "flex:" + n + (run.owner ? ";background:" + color(run.owner) : ""),
      title: "slots " + range + ": " + (run.owner || "unbound"),
    });
    if (n / Math.max(slotCount, 1) > 0.07) seg.append(run.owner || "none");
    bar.append(seg);
  }
  return bar;
}

function belief(b) {
  const kind = b.health.startsWith("FAIL") ? "FAIL" : "PFAIL";
  const reports = b.reports.length ? " (reports " + b.reports.join(",") + ")" : "";
  return h("span", { class: "chip " + kind, title: b.peer + " " + b.health + reports },
    b.peer + " " + b.health + reports);
}

function electionText(e) {
  if (!e) return "not reported";
  if (e.state === "running") {
    return "running, epoch " + e.epoch + ", votes {" + e.votes.join(",") + "}";
  }
  return e.state;
}

function nodeCard(card, slotCount) {
  const down = card.down;
  const el = h("div", {
    class: "card" + (down ? " down" : ""),
    id: "card-" + card.id,
    style: "--c:" + color(card.id),
    "data-role": card.role,
    "data-master": card.master || "",
    "data-current-epoch": opt(card.current_epoch),
    "data-config-epoch": opt(card.config_epoch),
    "data-down": down || "",
  },
    h("div", { class: "head" },
      h("span", { class: "id" }, card.id),
      h("span", { class: "badge " + card.role }, card.role),
      card.master ? h("span", { class: "sub" }, "of " + card.master) : null,
      down ? h("span", { class: "badge down" }, down.split(":")[0]) : null,
      card.name ? h("span", { class: "sub mono", title: card.address || "" }, card.name) : null),
    down && down.includes(":") ? h("div", { class: "sub" }, down) : null,
    h("div", { class: "epochs" },
      h("span", null, h("span", { class: "label" }, "currentEpoch "), h("b", { class: "cur" }, opt(card.current_epoch))),
      h("span", null, h("span", { class: "label" }, "configEpoch "), h("b", { class: "cfg" }, opt(card.config_epoch))),
      h("span", null, h("span", { class: "label" }, "lastVote "), h("b", null, opt(card.last_vote_epoch)))),
    slotBar(card, slotCount),
    h("div", { class: "row" }, h("span", { class: "label" }, "suspects "),
      card.beliefs.length ? card.beliefs.map(belief) : h("span", { class: "chip none" }, "nobody")),
    card.role === "replica" || (card.election && card.election.state !== "idle")
      ? h("div", { class: "row" }, h("span", { class: "label" }, "election "), electionText(card.election))
      : null,
    card.votes.length ? h("div", { class: "row" }, h("span", { class: "label" }, "voted "), card.votes.join("; ")) : null,
    card.extra.map(f => h("div", { class: "row" }, h("span", { class: "label" }, f.label + " "), f.value)),
    card.timers.length ? h("div", { class: "row timers" }, "timers: " + card.timers.join(", ")) : null);
  return el;
}

function drawCards(picture) {
  fill("cards", picture.nodes.map(c => nodeCard(c, picture.slot_count)));
}

// ---- the side panels -------------------------------------------------------------------------

function drawInFlight(picture, live) {
  if (live) { fill("inflight"); return; }
  const byDst = new Map();
  for (const g of picture.in_flight) {
    if (!byDst.has(g.dst)) byDst.set(g.dst, []);
    byDst.get(g.dst).push(g);
  }
  const rows = [...byDst.entries()].map(([dst, groups]) =>
    h("div", { class: "inflight-row" },
      h("b", { style: "color:" + color(dst) }, "to " + dst + " "),
      groups.map(g => h("details", null,
        h("summary", null, g.kind + " \u00d7" + g.messages.length),
        h("ul", { class: "mono" }, g.messages.map(m => h("li", null, m)))))));
  fill("inflight", h("h2", null, "In flight (" + picture.in_flight_total + ")"),
    rows.length ? rows : h("div", { class: "label" }, "nothing"));
}

function drawBudgets(picture) {
  if (!picture.budgets.length) { fill("budgets"); return; }
  fill("budgets", h("h2", null, "Fault budgets"),
    h("table", null, picture.budgets.map(b => {
      const pct = b.limit ? Math.min(100, 100 * b.used / b.limit) : 0;
      const text = b.limit === 0 ? "none allowed"
        : b.used + " of " + b.limit + " used, " + Math.max(0, b.limit - b.used) + " left";
      return h("tr", { "data-budget": b.name }, h("td", null, b.name),
        h("td", null, h("span", { class: "bar" + (b.limit && b.used >= b.limit ? " full" : "") }, h("i", { style: "width:" + pct + "%" }))),
        h("td", null, text));
    })));
}

function drawHistory(picture, title) {
  if (!picture.history.length) { fill("history"); return; }
  fill("history", h("h2", null, title || "History (what the properties read)"),
    h("table", null, picture.history.map(f =>
      h("tr", null, h("td", { class: "label" }, f.label), h("td", null, f.value)))));
}

function drawProperties(picture) {
  if (!picture.properties.length) { fill("props"); return; }
  const items = picture.properties.map(p => {
    let cls = "quiet", text;
    if (p.kind === "always") {
      cls = p.holds ? "quiet" : "bad";
      text = p.holds ? "holds here" : "VIOLATED here";
    } else {
      cls = p.holds ? "good" : "quiet";
      text = p.holds ? "reached here" : "not here";
    }
    return h("tr", null, h("td", null, p.name), h("td", { class: "prop " + cls }, text));
  });
  fill("props", h("h2", null, "Properties at this state"), h("table", null, items));
}

// ---- the sequence diagram --------------------------------------------------------------------

// Draws `steps` as a sequence diagram over lifelines for `nodes`; step `selected` (1-based, 0:
// none) is highlighted; `onpick(i)` is called with a step's number when its row is clicked.
function drawDiagram(nodes, steps, selected, onpick) {
  const col = Math.max(86, Math.min(130, 560 / Math.max(nodes.length, 1)));
  const left = 44, top = 34, row = 24;
  const width = left + col * nodes.length + 10;
  const height = top + row * steps.length + 14;
  const x = i => left + col * i + col / 2;
  const svg = s("svg", { width, height, viewBox: "0 0 " + width + " " + height, role: "img" });
  const defs = s("defs");
  const marker = s("marker", { id: "arrow", markerWidth: 10, markerHeight: 8, refX: 10, refY: 4, orient: "auto" });
  marker.append(s("path", { d: "M0,0 L10,4 L0,8 z", fill: "#334" }));
  const lost = s("marker", { id: "lost", markerWidth: 10, markerHeight: 10, refX: 5, refY: 5, orient: "auto" });
  lost.append(s("path", { d: "M1,1 L9,9 M9,1 L1,9", stroke: "#c53030", "stroke-width": 2 }));
  defs.append(marker, lost);
  svg.append(defs);
  nodes.forEach((n, i) => {
    svg.append(s("line", { x1: x(i), y1: top - 8, x2: x(i), y2: height, stroke: color(n.id), "stroke-width": 2, opacity: .45 }));
    svg.append(s("text", { x: x(i), y: 18, "text-anchor": "middle", "font-size": 14, "font-weight": 700, fill: color(n.id) }, n.id));
  });
  if (!steps.length) {
    svg.append(s("text", { x: left, y: top + 14, "font-size": 12, fill: "#667085" }, "no steps yet"));
  }
  steps.forEach((st, k) => {
    const y = top + row * k + row / 2;
    const g = s("g", { class: "steprow", "data-step": st.index });
    const bg = s("rect", { class: "bgrow", x: 0, y: y - row / 2, width, height: row, fill: st.index === selected ? "#fff4c2" : "transparent" });
    const title = s("title", {}, st.index + ". " + st.action);
    g.append(bg, title);
    g.append(s("text", { x: 6, y: y + 4, "font-size": 11, fill: "#667085" }, String(st.index)));
    const t = x(st.to);
    if (st.kind === "deliver" || st.kind === "lose") {
      const f = x(st.from);
      const end = st.kind === "lose" ? f + (t - f) * 0.55 : t;
      g.append(s("line", {
        x1: f, y1: y - 6, x2: end, y2: y + 6, stroke: st.kind === "lose" ? "#c53030" : "#334",
        "stroke-width": 1.4, "stroke-dasharray": st.kind === "lose" ? "4 3" : "",
        "marker-end": st.kind === "lose" ? "url(#lost)" : "url(#arrow)",
      }));
      const mid = (f + end) / 2;
      g.append(s("text", {
        x: mid, y: y - 3, "text-anchor": "middle", "font-size": 11, fill: "#1d2433",
        stroke: "#fff", "stroke-width": 3, "paint-order": "stroke",
      }, st.label));
    } else {
      const fillc = { timer: "#d9822b", crash: "#c53030", "crash-restart": "#c53030", restart: "#2f855a", event: "#3b6fd6" }[st.kind] || "#334";
      if (st.kind === "timer" || st.kind === "event") {
        g.append(s("circle", { cx: t, cy: y, r: 5, fill: fillc }));
      } else {
        g.append(s("rect", { x: t - 5, y: y - 5, width: 10, height: 10, fill: fillc }));
      }
      const rightSide = st.to < nodes.length - 1 || nodes.length === 1;
      g.append(s("text", {
        x: rightSide ? t + 9 : t - 9, y: y + 4, "font-size": 11, "text-anchor": rightSide ? "start" : "end",
        fill: "#1d2433", stroke: "#fff", "stroke-width": 3, "paint-order": "stroke",
      }, st.label));
    }
    if (onpick) g.addEventListener("click", () => onpick(st.index));
    svg.append(g);
  });
  const box = fill("diagram", svg);
  // Keep the selected step in view inside the diagram's own scroll box (never the page's).
  if (selected > 0) {
    const y = top + row * (selected - 1);
    if (y < box.scrollTop || y + row > box.scrollTop + box.clientHeight) {
      box.scrollTop = Math.max(0, y - box.clientHeight / 2);
    }
  }
}

function drawStepDetail(step, extra) {
  if (!step) { fill("stepdetail", extra || []); return; }
  fill("stepdetail",
    h("div", null, h("b", null, "Step " + step.index + ". "), h("span", { class: "mono" }, step.action)),
    step.changes.length ? h("ul", { class: "mono" }, step.changes.map(c => h("li", null, "~ " + c))) : null,
    step.sent.length ? h("ul", { class: "mono" }, step.sent.map(c => h("li", null, "> " + c))) : null,
    extra || []);
}

function drawPicture(picture, opts) {
  opts = opts || {};
  drawCards(picture);
  drawInFlight(picture, opts.live);
  drawBudgets(picture);
  drawHistory(picture, opts.historyTitle);
  drawProperties(picture);
}

function showError(text) {
  const el = $("error");
  el.hidden = !text;
  el.textContent = text || "";
}

// ---- explore: a path of the model ----------------------------------------------------------

function explorePath() {
  const m = location.hash.match(/^#\/steps\/([0-9/]*)$/);
  return m ? m[1].replace(/\/+$/, "") : "0";
}

async function exploreLoad() {
  const path = explorePath() || "0";
  let view;
  try {
    const res = await fetch("/api/steps/" + path);
    const text = await res.text();
    if (!res.ok) throw new Error(text || res.statusText);
    view = JSON.parse(text);
  } catch (e) {
    showError("cannot show path " + path + ": " + e.message);
    return;
  }
  showError("");
  document.body.dataset.path = view.path;
  drawPicture(view.picture);
  const parts = view.path.split("/");
  const go = k => { location.hash = "#/steps/" + parts.slice(0, k + 1).join("/"); };
  $("diagram-title").textContent = "Sequence (" + view.steps.length + " steps; click one to go back to it)";
  drawDiagram(view.picture.nodes, view.steps, view.steps.length, go);
  drawStepDetail(view.steps[view.steps.length - 1]);
  fill("controls",
    h("span", { class: "label mono" }, "path " + view.path),
    h("button", { onclick: () => go(0), disabled: view.steps.length ? null : "" }, "restart"),
    h("button", { onclick: () => go(view.steps.length - 1), disabled: view.steps.length ? null : "" }, "back one step"));
  const byActor = new Map();
  for (const a of view.actions) {
    if (!byActor.has(a.actor)) byActor.set(a.actor, []);
    byActor.get(a.actor).push(a);
  }
  const groups = [...byActor.keys()].sort((a, b) => a - b).map(actor =>
    h("div", { class: "actor" },
      h("b", { style: "color:" + color("n" + actor) }, "n" + actor),
      h("div", { class: "buttons" }, byActor.get(actor).map(a =>
        h("button", {
          class: "action" + (a.noop ? " noop" : ""),
          "data-index": a.index,
          title: a.noop ? "changes nothing" : "follow this step",
          onclick: () => { location.hash = "#/steps/" + view.path + "/" + a.index; },
        }, a.label + (a.noop ? "  (changes nothing)" : ""))))));
  fill("next", h("h2", null, "Next step (" + view.actions.length + " enabled, by acting node)"),
    h("div", { class: "list" }, groups.length ? groups : h("span", { class: "label" }, "none: the path ends here")));
  document.body.dataset.ready = "yes";
}

// ---- report: `slotguard check --html` ------------------------------------------------------

function reportShow(report, t, k) {
  const trace = report.traces[t];
  document.querySelectorAll("#controls button.trace").forEach((b, i) => b.classList.toggle("active", i === t));
  const pick = i => reportShow(report, t, i);
  drawPicture(trace.pictures[k], { historyTitle: "History (what the properties read)" });
  $("diagram-title").textContent = trace.what + " for " + trace.property + " (" + trace.steps.length +
    " steps; click a step, or use the arrow keys)";
  drawDiagram(trace.pictures[k].nodes, trace.steps, k, pick);
  drawStepDetail(trace.steps[k - 1],
    [k === trace.steps.length && trace.why ? h("div", { class: "why" }, "why: " + trace.why) : null,
     h("div", { class: "label" }, k === 0 ? "initial state" : "the cluster after step " + k),
     h("div", { class: "mono label" }, trace.reopen)]);
  fill("next", h("h2", null, "Steps"),
    h("div", { class: "list" },
      h("div", null, h("button", { class: k === 0 ? "active" : "", onclick: () => pick(0) }, "0. initial state")),
      trace.steps.map(st => h("div", null,
        h("button", { class: st.index === k ? "active" : "", onclick: () => pick(st.index) }, st.index + ". " + st.action)))));
  document.body.dataset.trace = t;
  document.body.dataset.step = k;
  document.onkeydown = ev => {
    if (ev.key === "ArrowRight" && k < trace.steps.length) pick(k + 1);
    if (ev.key === "ArrowLeft" && k > 0) pick(k - 1);
  };
}

function reportStart(report) {
  const v = $("verdicts");
  v.hidden = false;
  v.replaceChildren(
    h("div", null, h("span", { class: "result " + report.result }, "RESULT: " + report.result), "  ",
      h("span", { class: "label" }, report.configuration)),
    h("div", { class: "verdicts" }, report.verdicts.map(r => h("div", { class: "verdict", "data-property": r.name },
      h("span", null, r.name), " ", h("span", { class: "label" }, r.kind), " ",
      h("span", { class: r.failed ? "failed" : "" }, r.result)))),
    h("div", { class: "label" }, report.summary.map(l => h("div", null, l))));
  if (!report.traces.length) {
    fill("controls", h("span", { class: "label" }, "no counterexample to show"));
    $("diagram-title").textContent = "";
    document.body.dataset.ready = "yes";
    return;
  }
  const initial = Math.max(0, report.traces.findIndex(t => t.what === "counterexample"));
  fill("controls", report.traces.map((t, i) =>
    h("button", { class: "trace", onclick: () => reportShow(report, i, report.traces[i].steps.length) },
      t.what + ": " + t.property)));
  reportShow(report, initial, report.traces[initial].steps.length);
  document.body.dataset.ready = "yes";
}

// ---- live: a running cluster ---------------------------------------------------------------

async function livePoll() {
  try {
    const res = await fetch("/api/live", { cache: "no-store" });
    if (!res.ok) throw new Error(await res.text() || res.statusText);
    const view = JSON.parse(await res.text());
    showError("");
    drawPicture(view.picture, { live: true, historyTitle: "Cluster" });
    fill("subtitle", view.subtitle);
    $("diagram-title").textContent = "Changes seen (newest last; polled every " + view.poll_ms + " ms)";
    drawDiagram(view.picture.nodes, view.events, 0, null);
    drawStepDetail(null);
    fill("next", h("h2", null, "Changes seen, newest first"),
      h("div", { class: "list mono" }, view.events.length
        ? view.events.slice().reverse().slice(0, 30).map(e => h("div", { class: "event" }, e.action))
        : h("span", { class: "label" }, "none yet")));
    document.body.dataset.polls = view.polls;
    document.body.dataset.ready = "yes";
  } catch (e) {
    showError("cannot reach the cluster's page server: " + e.message);
  }
}

// ---- start -----------------------------------------------------------------------------------

(function start() {
  let boot;
  try {
    boot = JSON.parse($("boot").textContent);
  } catch (e) {
    showError("the page's data does not parse: " + e.message);
    return;
  }
  document.body.classList.add(boot.mode);
  fill("title", boot.title || "slotguard");
  fill("subtitle", boot.subtitle || "");
  if (boot.mode === "explore") {
    window.addEventListener("hashchange", exploreLoad);
    exploreLoad();
  } else if (boot.mode === "report") {
    reportStart(boot.report);
  } else if (boot.mode === "live") {
    livePoll();
    setInterval(livePoll, boot.poll_ms || 1000);
  } else {
    showError("unknown page mode " + boot.mode);
  }
})();
