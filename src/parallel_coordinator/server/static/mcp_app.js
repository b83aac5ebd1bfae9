// The MCP App (io.modelcontextprotocol/ui): the live session view inside a host such as Claude Desktop.
// It talks only to its host, by postMessage (JSON-RPC): ui/initialize, then the tool's result tells it the
// session, and it follows that session by calling get_session_view through the host (tools/call).
(function () {
  "use strict";
  var PROTOCOL = "2026-01-26", REFRESH_MS = 1000;
  var view = document.getElementById("session-view"), state = document.getElementById("app-state");
  var nextId = 1, pending = {}, sessionId = null, timer = null;
  window.onerror = function (message, source, line) {
    var previous = document.body.getAttribute("data-errors");
    document.body.setAttribute("data-errors", (previous ? previous + " | " : "") + message + " (line " + line + ")");
  };

  function send(message) { window.parent.postMessage(message, "*"); }
  function request(method, params) {
    return new Promise(function (resolve, reject) {
      var id = nextId++;
      pending[id] = {resolve: resolve, reject: reject};
      send({jsonrpc: "2.0", id: id, method: method, params: params});
    });
  }
  function notify(method, params) { send({jsonrpc: "2.0", method: method, params: params || {}}); }
  function say(text) { state.textContent = text; state.hidden = !text; }
  function textOf(result) {
    return (result.content || []).map(function (block) { return block.text || ""; }).join(" ");
  }

  function follow(id) {
    if (timer !== null) { clearTimeout(timer); timer = null; }
    sessionId = id;
    refresh();
  }

  function refresh() {
    timer = null;
    var following = sessionId;
    request("tools/call", {name: "get_session_view", arguments: {session_id: following}}).then(function (result) {
      if (following !== sessionId) { return; }
      if (result.isError) { say("could not read the session: " + textOf(result)); return; }
      window.PcoordView.render(view, result.structuredContent);
      say("");
      notify("ui/notifications/size-changed", {height: document.documentElement.scrollHeight});
      if (result.structuredContent.status === "RUNNING") { timer = setTimeout(refresh, REFRESH_MS); }
    }, function (problem) {
      say("the host did not answer: " + (problem && problem.message ? problem.message : problem));
    });
  }

  function fromResult(result) {
    var data = result && result.structuredContent;
    var found = data && (data.session_id || (data.progress && data.progress.session_id));
    if (found) { follow(found); } else { say("this result names no running session"); }
  }

  window.addEventListener("message", function (event) {
    if (event.source !== window.parent) { return; }
    var message = event.data;
    if (!message || message.jsonrpc !== "2.0") { return; }
    if (message.id !== undefined && message.method === undefined) {
      var waiter = pending[message.id];
      delete pending[message.id];
      if (waiter) {
        if (message.error) { waiter.reject(message.error); } else { waiter.resolve(message.result); }
      }
      return;
    }
    if (message.method === "ui/notifications/tool-result") {
      fromResult(message.params);
    } else if (message.method === "ui/notifications/tool-input") {
      var args = message.params && message.params.arguments;
      if (args && typeof args.session_id === "string") { follow(args.session_id); }
    } else if (message.method === "ui/resource-teardown" && message.id !== undefined) {
      if (timer !== null) { clearTimeout(timer); }
      sessionId = null;
      send({jsonrpc: "2.0", id: message.id, result: {}});
    } else if (message.id !== undefined) {
      send({jsonrpc: "2.0", id: message.id, error: {code: -32601, message: "method not found: " + message.method}});
    }
  });

  // Cancel asks first, inline: a sandboxed frame may not open a confirm() dialog.
  var cancel = view.querySelector('[data-part="cancel"]'), result = view.querySelector('[data-part="cancel-result"]');
  var ask = document.createElement("span");
  ask.className = "confirm";
  ask.hidden = true;
  ask.appendChild(document.createTextNode("Cancel it and kill its running agents? "));
  var yes = document.createElement("button"), no = document.createElement("button");
  yes.type = no.type = "button";
  yes.className = "cancel";
  yes.setAttribute("data-part", "confirm-cancel");
  yes.textContent = "Yes, cancel";
  no.textContent = "No";
  ask.appendChild(yes);
  ask.appendChild(document.createTextNode(" "));
  ask.appendChild(no);
  cancel.parentNode.appendChild(ask);
  cancel.addEventListener("click", function () { ask.hidden = false; });
  no.addEventListener("click", function () { ask.hidden = true; });
  yes.addEventListener("click", function () {
    ask.hidden = true;
    result.textContent = "cancelling…";
    request("tools/call", {name: "cancel_execution", arguments: {session_id: sessionId}}).then(function (answer) {
      var data = answer.structuredContent;
      result.textContent = answer.isError ? "could not cancel: " + textOf(answer)
        : data.status + ": " + data.cancelled_tasks + " task(s) cancelled, " + data.killed_processes + " process(es) killed";
      if (timer !== null) { clearTimeout(timer); }
      refresh();
    }, function (problem) { result.textContent = "could not cancel: " + (problem && problem.message); });
  });

  window.PcoordView.follow(view);
  request("ui/initialize", {
    protocolVersion: PROTOCOL, appInfo: {name: "parallel-coordinator-session", version: "1"}, appCapabilities: {}
  }).then(function () {
    notify("ui/notifications/initialized", {});
    say("waiting for the session…");
    document.body.dataset.rendered = "ok";
  }, function (problem) { say("the host refused to start the app: " + (problem && problem.message)); });
})();
