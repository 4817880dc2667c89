// forktex-core console: live counts on the runs page, and a run page that follows its run.
// No framework and no build step; the pages work without it (only less live).
"use strict";
(function () {
  function poll(url, every, handle) {
    var stopped = false;
    function tick() {
      if (stopped) return;
      fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
        .then(function (r) { return r.ok ? r.json() : null; })
        .then(function (data) { if (data && handle(data) === false) stopped = true; })
        .catch(function () {})
        .then(function () { if (!stopped) setTimeout(tick, every); });
    }
    tick();
  }

  var counts = document.querySelector("[data-counts-url]");
  if (counts) {
    poll(counts.getAttribute("data-counts-url"), 3000, function (data) {
      Object.keys(data.counts).forEach(function (status) {
        var cell = counts.querySelector('[data-count="' + status + '"]');
        if (cell) cell.textContent = (data.exact ? "" : "≈") + data.counts[status].toLocaleString();
      });
      var note = counts.querySelector("[data-count-note]");
      if (note) note.textContent = data.exact ? "" : "≈ finished runs are estimates";
    });
  }

  var body = document.body;
  var stateUrl = body.getAttribute("data-run-state-url");
  if (stateUrl && body.getAttribute("data-run-finished") !== "true") {
    var known = body.getAttribute("data-run-state");
    var edited = false;
    document.querySelectorAll("form input, form textarea").forEach(function (field) {
      field.addEventListener("input", function () { edited = true; });
    });
    poll(stateUrl, 1000, function (data) {
      if (data.state === known) return true;
      if (!edited) { window.location.reload(); return false; }
      if (!document.querySelector(".stale")) {
        var link = document.createElement("a");
        link.className = "notice stale";
        link.href = window.location.pathname;
        link.textContent = "This run changed: reload";
        body.appendChild(link);
      }
      return false;
    });
  }

  document.querySelectorAll("form[data-confirm]").forEach(function (form) {
    form.addEventListener("submit", function (event) {
      if (!window.confirm(form.getAttribute("data-confirm"))) event.preventDefault();
    });
  });
})();
