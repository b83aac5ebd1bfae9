// The live session view: draws one snapshot (views/_live.py) into the page, in the report's shapes and colours.
// Shared by the dashboard (fed by server-sent events) and the MCP App (fed by tool calls). User text only ever
// goes through textContent or setAttribute: no snapshot string is parsed as HTML.
(function () {
  "use strict";
  var SVG = "http://www.w3.org/2000/svg";
  // The report's timeline geometry (report/_timeline.py), so both pictures look alike.
  var TL_WIDTH = 1100, TL_LEFT = 64, TL_RIGHT = 16, TL_TOP = 8, LANE_H = 24, BAR_H = 18, AXIS_H = 34;
  var CHAR_W = 8.0, LABEL_CHARS = 19;
  var selected = null;

  function el(tag, attrs, text) {
    var node = document.createElement(tag);
    setAll(node, attrs);
    if (text !== undefined && text !== null) { node.textContent = String(text); }
    return node;
  }
  function svg(tag, attrs, text) {
    var node = document.createElementNS(SVG, tag);
    setAll(node, attrs);
    if (text !== undefined && text !== null) { node.textContent = String(text); }
    return node;
  }
  function setAll(node, attrs) {
    for (var key in attrs || {}) {
      if (Object.prototype.hasOwnProperty.call(attrs, key) && attrs[key] !== null && attrs[key] !== undefined) {
        node.setAttribute(key, String(attrs[key]));
      }
    }
  }
  function cap(text, limit) { text = String(text); return text.length <= limit ? text : text.slice(0, limit - 1) + "\u2026"; }
  function cssName(value) { return String(value).toLowerCase().replace(/[^a-z0-9_-]/g, "_") || "unknown"; }
  function duration(seconds) {
    if (seconds === null || seconds === undefined) { return "\u2014"; }
    if (seconds < 1) { return Math.round(seconds * 1000) + " ms"; }
    if (seconds < 60) { return seconds.toFixed(2) + " s"; }
    var minutes = Math.floor(Math.round(seconds) / 60), secs = Math.round(seconds) % 60;
    if (minutes < 60) { return minutes + " m " + (secs < 10 ? "0" : "") + secs + " s"; }
    return Math.floor(minutes / 60) + " h " + (minutes % 60 < 10 ? "0" : "") + (minutes % 60) + " m";
  }
  function find(root, role) { return root.querySelector('[data-part="' + role + '"]'); }

  function facts(root, snap) {
    find(root, "session-id").textContent = snap.session_id;
    find(root, "description").textContent = snap.task_description || "";
    var badge = find(root, "status");
    badge.textContent = snap.status;
    badge.className = "badge session-" + snap.status_class;
    var done = snap.total_tasks - snap.counts.pending - snap.counts.running;
    find(root, "elapsed").textContent = duration(snap.elapsed_s) + (snap.status === "RUNNING" ? " so far" : "");
    find(root, "progress").textContent = done + " of " + snap.total_tasks + " ended \u00b7 " + snap.counts.running +
      " running \u00b7 " + snap.counts.pending + " pending";
    find(root, "outcomes").textContent = ["succeeded", "failed", "skipped", "cancelled", "interrupted"]
      .filter(function (s) { return snap.counts[s]; }).map(function (s) { return snap.counts[s] + " " + s; })
      .join(", ") || "none yet";
    find(root, "slots").textContent = "peak " + snap.peak_parallelism + " of " + snap.max_agents;
    var summary = find(root, "error-summary");
    summary.textContent = snap.error_summary || "";
    summary.hidden = !snap.error_summary;
    var cancel = find(root, "cancel");
    cancel.hidden = snap.status !== "RUNNING";
    cancel.setAttribute("data-session", snap.session_id);
  }

  function timeline(snap) {
    var t = snap.timeline, lanes = Math.max(t.lanes, 1), plotW = TL_WIDTH - TL_LEFT - TL_RIGHT;
    var plotH = lanes * LANE_H, height = TL_TOP + plotH + AXIS_H, scale = plotW / t.span;
    var root = svg("svg", {id: "timeline", "class": "chart", viewBox: "0 0 " + TL_WIDTH + " " + height,
      width: TL_WIDTH, height: height, role: "img", "aria-label": "Timeline of every attempt on its slot"});
    for (var lane = 0; lane < t.lanes; lane++) {
      var top = TL_TOP + lane * LANE_H;
      root.appendChild(svg("rect", {"class": "lane-bg", x: TL_LEFT, y: top, width: plotW, height: LANE_H}));
      root.appendChild(svg("text", {"class": "lane-label", x: TL_LEFT - 8, y: top + LANE_H / 2 + 4}, "slot " + (lane + 1)));
    }
    t.ticks.forEach(function (tick) {
      var x = TL_LEFT + tick[0] * scale;
      root.appendChild(svg("line", {"class": "grid", x1: x, y1: TL_TOP, x2: x, y2: TL_TOP + plotH + 4}));
      root.appendChild(svg("text", {"class": "tick", x: x, y: TL_TOP + plotH + 16}, tick[1]));
    });
    root.appendChild(svg("text", {"class": "axis-title", x: TL_LEFT + plotW / 2, y: height - 2}, t.axis_title));
    if (!t.bars.length) {
      root.appendChild(svg("text", {"class": "empty", x: TL_LEFT + 8, y: TL_TOP + 16}, "no attempt has started yet"));
    }
    t.bars.forEach(function (bar, index) {
      var x = TL_LEFT + bar.start * scale, w = Math.max((bar.end - bar.start) * scale, 2);
      var y = TL_TOP + bar.lane * LANE_H + (LANE_H - BAR_H) / 2;
      var rect = svg("rect", {"class": "attempt outcome-" + cssName(bar.outcome), "data-task": bar.task_id,
        "data-attempt": bar.attempt, "data-outcome": bar.outcome, x: x, y: y, width: w, height: BAR_H, rx: 3});
      var lines = ["task " + bar.task_id + " \u00b7 attempt " + bar.attempt, "agent: " + bar.agent,
        "start: +" + bar.start.toFixed(3) + " s", "duration: " + duration(bar.end - bar.start) +
        (bar.outcome === "running" ? " so far" : ""), "outcome: " + bar.outcome +
        (bar.exit_code ? " (exit " + bar.exit_code + ")" : "")];
      if (bar.error) { lines.push("error: " + bar.error); }
      rect.appendChild(svg("title", {}, lines.join("\n")));
      root.appendChild(rect);
      var suffix = bar.attempt === 1 ? "" : " #" + bar.attempt, fits = Math.floor((w - 8) / CHAR_W) - suffix.length;
      if (fits >= 3) {
        var clip = svg("clipPath", {id: "live-clip-" + index});
        clip.appendChild(svg("rect", {x: x, y: y, width: w - 2, height: BAR_H}));
        root.appendChild(clip);
        root.appendChild(svg("text", {"class": "bar-label", "clip-path": "url(#live-clip-" + index + ")", x: x + 4,
          y: y + BAR_H / 2 + 4}, cap(bar.task_id, fits) + suffix));
      }
    });
    return root;
  }

  function graph(snap) {
    var g = snap.graph, byId = {};
    snap.tasks.forEach(function (task) { byId[task.task_id] = task; });
    var root = svg("svg", {id: "graph", "class": "chart", viewBox: "0 0 " + g.width + " " + g.height, width: g.width,
      height: g.height, role: "img", "aria-label": "Dependency graph of the tasks"});
    root.style.minWidth = Math.ceil(g.width * 0.75) + "px";  // through the CSSOM: the page's policy forbids style attributes
    var defs = svg("defs"), marker = svg("marker", {id: "arrow", viewBox: "0 0 10 10", refX: 9, refY: 5,
      markerWidth: 7, markerHeight: 7, orient: "auto-start-reverse"});
    marker.appendChild(svg("path", {d: "M0,0 L10,5 L0,10 z", "class": "arrowhead"}));
    defs.appendChild(marker);
    root.appendChild(defs);
    g.bands.forEach(function (band) {
      root.appendChild(svg("rect", {"class": "layer-band", x: band.left - 6, y: 10, width: band.right - band.left + 12,
        height: g.height - 20, rx: 6}));
      root.appendChild(svg("text", {"class": "layer-label", x: (band.left + band.right) / 2, y: 24}, "layer " + band.layer));
    });
    g.edges.forEach(function (edge) {
      root.appendChild(svg("path", {"class": "edge", "data-from": edge.from, "data-to": edge.to, d: edge.d,
        "marker-end": "url(#arrow)"}));
    });
    g.nodes.forEach(function (node) {
      var task = byId[node.task_id] || {status: "pending", status_class: "pending", agent: "", attempts: 0};
      var group = svg("g", {"class": "task status-" + task.status_class, "data-task": node.task_id,
        "data-status": task.status, "data-layer": node.layer});
      var tip = node.task_id + "\nagent: " + task.agent + "\nstatus: " + task.status + "\nattempts: " + task.attempts;
      if (task.message) { tip += "\nlatest: " + task.message; }
      if (task.waiting) { tip += "\nwaiting: " + task.waiting; }
      if (task.error) { tip += "\nerror: " + task.error; }
      group.appendChild(svg("title", {}, tip));
      group.appendChild(svg("rect", {x: node.x, y: node.y, width: g.node_w, height: g.node_h, rx: 6}));
      group.appendChild(svg("text", {x: node.x + g.node_w / 2, y: node.y + g.node_h / 2 + 4}, cap(node.task_id, LABEL_CHARS)));
      root.appendChild(group);
    });
    return root;
  }

  function spend(snap) {
    var table = el("table", {id: "spend"}), head = el("tr", {"class": "subhead"});
    ["", "spent", "budget", "forecast"].forEach(function (name) { head.appendChild(el("th", {scope: "col"}, name)); });
    table.appendChild(head);
    var format = {tokens: function (v) { return Math.round(v).toLocaleString("en-US"); },
      usd: function (v) { return "$" + Number(v).toFixed(4); }, seconds: function (v) { return duration(v); }};
    snap.spend.forEach(function (row) {
      var tr = el("tr", {"data-measure": row.measure});
      tr.appendChild(el("th", {scope: "row"}, row.measure));
      ["spent", "budget", "forecast"].forEach(function (key) {
        tr.appendChild(el("td", {"class": "num"}, row[key] === null || row[key] === undefined ? "\u2014" : format[row.measure](row[key])));
      });
      table.appendChild(tr);
    });
    if (!snap.spend.length) { table.appendChild(el("tr", {}, null)).appendChild(el("td", {colspan: 4, "class": "muted"}, "nothing measured")); }
    return table;
  }

  function tasks(snap) {
    var body = document.createDocumentFragment();  // rows for the table's own tbody
    snap.tasks.forEach(function (task) {
      var tr = el("tr", {"data-task": task.task_id, "data-status": task.status});
      tr.appendChild(el("td", {"class": "id", title: task.description || ""}, task.task_id));
      tr.appendChild(el("td", {}, task.agent));
      var cell = el("td");
      cell.appendChild(el("span", {"class": "pill status-" + task.status_class}, task.status));
      tr.appendChild(cell);
      tr.appendChild(el("td", {"class": "num"}, task.attempts));
      var note = task.waiting ? task.waiting : task.message || "";
      if (task.progress !== null && task.progress !== undefined && task.status === "running") {
        note = Math.round(task.progress) + "%" + (note ? " \u00b7 " + note : "");
      }
      tr.appendChild(el("td", {"class": task.waiting ? "waiting" : "message"}, note));
      tr.appendChild(el("td", {"class": "error"}, task.error || ""));
      body.appendChild(tr);
    });
    return body;
  }

  function applySelection(root) {
    var items = root.querySelectorAll("[data-task]");
    for (var i = 0; i < items.length; i++) {
      var match = selected !== null && items[i].getAttribute("data-task") === selected;
      items[i].classList.toggle("selected", match);
      items[i].classList.toggle("dimmed", selected !== null && !match && items[i].tagName.toLowerCase() !== "tr");
    }
  }

  function render(root, snap) {
    facts(root, snap);
    find(root, "timeline").replaceChildren(timeline(snap));
    find(root, "graph").replaceChildren(graph(snap));
    find(root, "spend").replaceChildren(spend(snap));
    var reason = find(root, "queue-reason");
    reason.textContent = snap.queue_reason || (snap.status === "RUNNING" ? "nothing holds the queue back" : "the session has ended");
    find(root, "tasks").replaceChildren(tasks(snap));
    var omitted = [];
    if (snap.tasks_omitted) { omitted.push(snap.tasks_omitted + " task(s) not shown (the view shows " + snap.tasks.length + ", those that need attention first)"); }
    if (snap.timeline.attempts_omitted) { omitted.push(snap.timeline.attempts_omitted + " older attempt(s) not drawn"); }
    if (snap.graph.edges_omitted) { omitted.push(snap.graph.edges_omitted + " dependency arrow(s) not drawn"); }
    find(root, "omitted").textContent = omitted.join("; ");
    applySelection(root);
    root.hidden = false;
    root.setAttribute("data-session", snap.session_id);
    root.setAttribute("data-status", snap.status);
  }

  function follow(root) {
    root.addEventListener("click", function (event) {
      var target = event.target && event.target.closest ? event.target.closest("[data-task]") : null;
      if (!target || !root.contains(target)) { return; }
      var task = target.getAttribute("data-task");
      selected = task === selected ? null : task;
      applySelection(root);
    });
  }

  window.PcoordView = {render: render, follow: follow, duration: duration};
})();
