// The dashboard page: the server's sessions, and one session drawn live from server-sent events
// (server/dashboard.py). Cancelling asks first, then POSTs with a header no other site can send.
(function () {
  "use strict";
  var body = document.body;
  window.onerror = function (message, source, line) {
    var previous = body.getAttribute("data-errors");
    body.setAttribute("data-errors", (previous ? previous + " | " : "") + message + " (line " + line + ")");
  };
  var view = document.getElementById("session-view");
  var list = document.getElementById("sessions");
  var connection = document.getElementById("connection");
  var current = new URLSearchParams(location.search).get("session");
  var stream = null;

  function cell(row, text, cls) {
    var td = document.createElement("td");
    if (cls) { td.className = cls; }
    td.textContent = text;
    row.appendChild(td);
    return td;
  }

  function showSessions(sessions) {
    var rows = [];
    sessions.forEach(function (s) {
      var tr = document.createElement("tr");
      tr.setAttribute("data-session", s.session_id);
      tr.setAttribute("data-status", s.status);
      if (s.session_id === current) { tr.className = "current"; }
      var status = cell(tr, "");
      var badge = document.createElement("span");
      badge.className = "badge session-" + s.status_class;
      badge.textContent = s.status;
      status.appendChild(badge);
      cell(tr, s.session_id, "id");
      cell(tr, s.created_at ? new Date(s.created_at * 1000).toLocaleString() : "");
      cell(tr, s.task_description, "task").title = s.task_description;
      rows.push(tr);
    });
    if (!rows.length) {
      var empty = document.createElement("tr");
      cell(empty, "no session yet: start one with coordinate_task (or pcoord run), it appears here", "muted").colSpan = 4;
      rows.push(empty);
    }
    list.replaceChildren.apply(list, rows);
    if (current === null && sessions.length) { select(sessions[0].session_id, true); }
  }

  function connect() {
    if (stream !== null) { stream.close(); }
    stream = new EventSource("dashboard/events" + (current ? "?session=" + encodeURIComponent(current) : ""));
    stream.addEventListener("open", function () {
      connection.textContent = "live";
      connection.className = "connection";
    });
    stream.addEventListener("sessions", function (event) { showSessions(JSON.parse(event.data).sessions); });
    stream.addEventListener("snapshot", function (event) { window.PcoordView.render(view, JSON.parse(event.data)); });
    stream.addEventListener("problem", function (event) {
      connection.textContent = JSON.parse(event.data).message;
      connection.className = "connection lost";
    });
    stream.addEventListener("error", function () {
      // The browser reconnects by itself after a dropped stream; a refused one stays closed.
      connection.textContent = stream.readyState === EventSource.CLOSED ? "disconnected: reload the page" : "reconnecting…";
      connection.className = "connection lost";
    });
  }

  function select(sessionId, replace) {
    if (sessionId === current && stream !== null) { return; }
    current = sessionId;
    var url = "dashboard?session=" + encodeURIComponent(sessionId);
    if (replace) { history.replaceState(null, "", url); } else { history.pushState(null, "", url); }
    view.hidden = true;
    find("cancel-result").textContent = "";
    connect();
  }

  function find(role) { return view.querySelector('[data-part="' + role + '"]'); }

  list.addEventListener("click", function (event) {
    var row = event.target.closest ? event.target.closest("tr[data-session]") : null;
    if (row) { select(row.getAttribute("data-session"), false); }
  });
  window.addEventListener("popstate", function () {
    current = new URLSearchParams(location.search).get("session");
    connect();
  });

  find("cancel").addEventListener("click", function (event) {
    var button = event.currentTarget, sessionId = button.getAttribute("data-session");
    if (!window.confirm("Cancel session " + sessionId + "? Tasks not started are cancelled and running agents are killed.")) {
      return;
    }
    button.disabled = true;
    var result = find("cancel-result");
    result.textContent = "cancelling…";
    fetch("dashboard/sessions/" + encodeURIComponent(sessionId) + "/cancel", {
      method: "POST", credentials: "same-origin", headers: {"X-Pcoord-Dashboard": "cancel"}
    }).then(function (response) {
      return response.json().then(function (answer) {
        result.textContent = response.ok
          ? answer.status + ": " + answer.cancelled_tasks + " task(s) cancelled, " + answer.killed_processes +
            " process(es) killed" + (answer.note ? " (" + answer.note + ")" : "")
          : "could not cancel: " + answer.error;
      });
    }).catch(function (problem) {
      result.textContent = "could not cancel: " + problem;
    }).then(function () { button.disabled = false; });
  });

  window.PcoordView.follow(view);
  connect();
  body.dataset.rendered = "ok";
})();
