// Selection across the timeline, graph and task table. Reads task ids from data-task attributes, never
// from inline data: user text never reaches a script. Inlined into every page (report/_page.py).
(function () {
  "use strict";
  var body = document.body;
  window.onerror = function (message, source, line) {
    var previous = body.getAttribute("data-errors");
    body.setAttribute("data-errors", (previous ? previous + " | " : "") + message + " (line " + line + ")");
  };
  var selected = null;
  function select(task) {
    selected = task === selected ? null : task;
    var items = document.querySelectorAll("[data-task]");
    for (var i = 0; i < items.length; i++) {
      var match = selected !== null && items[i].getAttribute("data-task") === selected;
      items[i].classList.toggle("selected", match);
      items[i].classList.toggle("dimmed", selected !== null && !match && items[i].tagName.toLowerCase() !== "tr");
    }
    var edges = document.querySelectorAll("#graph .edge");
    for (var j = 0; j < edges.length; j++) {
      var touches = edges[j].getAttribute("data-from") === selected || edges[j].getAttribute("data-to") === selected;
      edges[j].classList.toggle("dimmed", selected !== null && !touches);
    }
  }
  document.addEventListener("click", function (event) {
    var origin = event.target && event.target.closest ? event.target : null;
    if (origin && origin.closest("details")) { return; }  // opening an output is not a selection
    var target = origin ? origin.closest("[data-task]") : null;
    if (target) {
      select(target.getAttribute("data-task"));
    } else if (selected !== null) {
      select(selected);
    }
  });
  document.addEventListener("keydown", function (event) {
    if (event.key === "Escape" && selected !== null) { select(selected); }
  });
  // report.html#task=<id> opens with that task selected: a link can point at one task.
  var wanted = null;
  try {
    wanted = location.hash.indexOf("#task=") === 0 ? decodeURIComponent(location.hash.slice(6)) : null;
  } catch (malformed) {
    wanted = null;  // a hand-edited link with a broken escape: open unselected
  }
  if (wanted !== null) { select(wanted); }
  body.dataset.rendered = "ok";
})();
