// The check-in screen: swaps the QR code and the code when they rotate, and keeps the count of
// students checked in up to date, without reloading the page. Values come from data- attributes
// (the Content Security Policy forbids inline script). Without JavaScript a meta refresh reloads.
(function () {
  "use strict";

  var root = document.querySelector("[data-display-url]");
  if (!root) {
    return;
  }
  var POLL_MS = 5000; // the count refreshes at least this often
  var RETRY_MS = 3000;
  var AFTER_ROTATION_MS = 250; // ask just after the new step starts
  var url = root.getAttribute("data-display-url");
  var qr = root.querySelector("[data-qr]");
  var code = root.querySelector("[data-code]");
  var count = root.querySelector("[data-count]");
  var countdown = root.querySelector("[data-countdown]");
  var status = root.querySelector("[data-status]");
  var fullscreen = root.querySelector("[data-fullscreen]");
  var isOpen = root.getAttribute("data-open") === "true";
  var step = Number(root.getAttribute("data-step"));
  var deadline = Date.now() + Number(root.getAttribute("data-seconds-left") || 0) * 1000;
  var timer = null;

  function say(text) {
    if (!status) {
      return;
    }
    status.textContent = text;
    status.hidden = !text;
  }

  function tick() {
    if (!countdown || !isOpen) {
      return;
    }
    var seconds = Math.max(Math.ceil((deadline - Date.now()) / 1000), 0);
    countdown.textContent = root.getAttribute("data-text-seconds").replace("%s", String(seconds));
  }

  function schedule(delay) {
    window.clearTimeout(timer);
    timer = window.setTimeout(refresh, delay);
  }

  function apply(data) {
    if (count) {
      count.textContent = String(data.checked_in);
    }
    if (!data.open) {
      isOpen = false;
      root.setAttribute("data-open", "false");
      if (qr) {
        qr.hidden = true;
      }
      if (code) {
        code.textContent = "—";
      }
      if (countdown) {
        countdown.textContent = "";
      }
      say(root.getAttribute("data-text-closed"));
      return false;
    }
    if (!qr || !code) {
      window.location.reload(); // opened since this page was drawn
      return false;
    }
    say("");
    if (data.step !== step) {
      step = data.step;
      qr.innerHTML = data.svg;
      code.textContent = data.code;
      root.setAttribute("data-step", String(data.step));
      root.setAttribute("data-check-in-url", data.url);
    }
    deadline = Date.now() + data.seconds_left * 1000;
    tick();
    return true;
  }

  function refresh() {
    window
      .campusiqFetchJson(url)
      .then(function (data) {
        if (apply(data)) {
          schedule(Math.min(Math.max(deadline - Date.now(), 0) + AFTER_ROTATION_MS, POLL_MS));
        } else {
          schedule(POLL_MS * 2); // closed: keep the count honest, slowly
        }
      })
      .catch(function () {
        say(root.getAttribute("data-text-offline"));
        schedule(RETRY_MS);
      });
  }

  if (fullscreen && document.documentElement.requestFullscreen) {
    fullscreen.hidden = false;
    fullscreen.addEventListener("click", function () {
      document.documentElement.requestFullscreen().catch(function () {});
    });
  }
  tick();
  window.setInterval(tick, 1000);
  schedule(isOpen ? Math.min(Math.max(deadline - Date.now(), 0) + AFTER_ROTATION_MS, POLL_MS) : POLL_MS);
})();
