// The progress bar of a big import's admin page: polls the job's progress until it finishes, then
// reloads the page to show the result (counts, refused rows).
(function () {
  "use strict";
  var POLL_MS = 1000;
  var RUNNING = ["queued", "running"];

  // The sentences come translated from the page (data-text, data-left), with {placeholders}.
  function fill(template, values) {
    return template.replace(/\{(\w+)\}/g, function (_, name) { return String(values[name]); });
  }

  function describe(bar, p) {
    var text = fill(bar.dataset.text, { status: p.status, done: p.rows_done, total: p.rows_total, errors: p.errors });
    if (p.seconds_left !== null && p.seconds_left !== undefined) {
      text += " " + fill(bar.dataset.left, { seconds: p.seconds_left });
    }
    return text;
  }

  function poll(bar, label) {
    fetch(bar.dataset.url, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (response) { return response.ok ? response.json() : Promise.reject(response.status); })
      .then(function (p) {
        bar.max = p.rows_total || 1;
        bar.value = p.rows_done;
        label.textContent = describe(bar, p);
        if (RUNNING.indexOf(p.status) >= 0) {
          window.setTimeout(function () { poll(bar, label); }, POLL_MS);
        } else if (RUNNING.indexOf(bar.dataset.status) >= 0) {
          window.location.reload();
        }
      })
      .catch(function () { window.setTimeout(function () { poll(bar, label); }, POLL_MS * 5); });
  }

  document.addEventListener("DOMContentLoaded", function () {
    var bar = document.getElementById("import-job-progress");
    var label = document.getElementById("import-job-progress-text");
    if (bar && label && bar.dataset.url && RUNNING.indexOf(bar.dataset.status) >= 0) {
      poll(bar, label);
    }
  });
})();
