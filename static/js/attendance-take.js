// The marking page: asks for the session's marks every few seconds and shows check-ins as they
// arrive, without touching a row the lecturer has already changed (their choice is kept until
// they save). The page works without it: the marks are an ordinary form.
(function () {
  "use strict";

  var form = document.querySelector("form[data-marks-url]");
  if (!form) {
    return;
  }
  var POLL_MS = 5000;
  var url = form.getAttribute("data-marks-url");
  var count = document.querySelector("[data-checked-in]");
  var touched = {};

  form.addEventListener("change", function (event) {
    var row = event.target.closest("tr[data-student]");
    if (row) {
      touched[row.getAttribute("data-student")] = true;
    }
  });

  function apply(data) {
    if (count) {
      count.textContent = String(data.checked_in);
    }
    Object.keys(data.marks).forEach(function (studentId) {
      var mark = data.marks[studentId];
      var row = form.querySelector('tr[data-student="' + studentId + '"]');
      if (!row || touched[studentId]) {
        return;
      }
      var radio = row.querySelector('input[type="radio"][value="' + mark.status + '"]');
      if (radio && !radio.checked) {
        radio.checked = true;
        var recorded = row.querySelector("[data-recorded]");
        if (recorded) {
          recorded.textContent = form.getAttribute("data-text-arrived");
        }
      }
    });
  }

  function refresh() {
    window
      .campusiqFetchJson(url)
      .then(apply)
      .catch(function () {})
      .then(function () {
        window.setTimeout(refresh, POLL_MS);
      });
  }

  window.setTimeout(refresh, POLL_MS);
})();
