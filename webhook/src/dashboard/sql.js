// The SQL page: posts the query to /api/v1/sql with the API token the user pasted and shows the
// answer. Every value reaches the page through textContent, never as HTML.
(function () {
  "use strict";
  var TOKEN_KEY = "olo.sql.token";
  var byId = function (id) { return document.getElementById(id); };
  var token = byId("sql-token");
  var text = byId("sql-text");
  var run = byId("sql-run");
  if (!token || !text || !run) { return; }
  var error = byId("sql-error");
  var result = byId("sql-result");

  try { token.value = sessionStorage.getItem(TOKEN_KEY) || ""; } catch (e) { /* storage off */ }
  token.addEventListener("change", function () {
    try { sessionStorage.setItem(TOKEN_KEY, token.value.trim()); } catch (e) { /* storage off */ }
  });

  function el(tag, content, className) {
    var node = document.createElement(tag);
    if (content !== undefined) { node.textContent = content; }
    if (className) { node.className = className; }
    return node;
  }

  function cell(value) {
    if (value === null) { return el("td", "NULL", "muted"); }
    if (typeof value === "string") { return el("td", value); }
    if (typeof value === "number") { return el("td", String(value), "num"); }
    return el("td", JSON.stringify(value), "mono");
  }

  function showError(message) {
    result.hidden = true;
    error.textContent = message;
    error.hidden = false;
  }

  function show(answer) {
    error.hidden = true;
    var head = byId("sql-table").tHead;
    var body = byId("sql-table").tBodies[0];
    head.replaceChildren();
    body.replaceChildren();
    var names = el("tr");
    answer.columns.forEach(function (c) {
      var th = el("th", c.name);
      th.appendChild(el("span", " " + c.type, "muted small"));
      names.appendChild(th);
    });
    head.appendChild(names);
    answer.rows.forEach(function (row) {
      var tr = el("tr");
      row.forEach(function (v) { tr.appendChild(cell(v)); });
      body.appendChild(tr);
    });
    var n = answer.rows.length;
    byId("sql-summary").textContent = n + (n === 1 ? " row" : " rows");
    byId("sql-query-id").textContent = answer.query_id;
    var truncated = byId("sql-truncated");
    truncated.textContent = "truncated at " + n + " rows: the query has more";
    truncated.hidden = !answer.truncated;
    result.hidden = false;
  }

  function submit() {
    var bearer = token.value.trim();
    if (!bearer) { showError("Paste an API token first: every query runs as a token's user."); return; }
    try { sessionStorage.setItem(TOKEN_KEY, bearer); } catch (e) { /* storage off */ }
    var request = { sql: text.value };
    var catalog = byId("sql-catalog").value.trim();
    var schema = byId("sql-schema").value.trim();
    if (catalog) { request.catalog = catalog; }
    if (schema) { request.schema = schema; }
    run.disabled = true;
    fetch("/api/v1/sql", {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "Authorization": "Bearer " + bearer },
      body: JSON.stringify(request)
    }).then(function (response) {
      return response.json().then(function (answer) {
        if (response.ok) { show(answer); return; }
        var e = answer && answer.error;
        showError(e ? e.message + " (" + e.code + ", " + e.id + ")" : "HTTP " + response.status);
      }, function () { showError("HTTP " + response.status + " without a JSON answer"); });
    }).catch(function (e) {
      showError("The server could not be reached: " + e);
    }).finally(function () { run.disabled = false; });
  }

  run.addEventListener("click", submit);
  text.addEventListener("keydown", function (e) {
    if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) { e.preventDefault(); submit(); }
  });
}());
