// Progressive enhancement only: every page works without this file.
document.documentElement.classList.add("js");

// The JSON of a same-origin URL, never cached; rejects on an HTTP error. Used by the pages that poll.
window.campusiqFetchJson = function (url) {
  return window
    .fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin", cache: "no-store" })
    .then(function (response) {
      if (!response.ok) {
        throw new Error("HTTP " + response.status);
      }
      return response.json();
    });
};

// Copy buttons (the calendar feed's address): hidden until this file runs, as they need it.
document.querySelectorAll("[data-copy-target]").forEach(function (button) {
  var field = document.getElementById(button.getAttribute("data-copy-target"));
  if (!field || !navigator.clipboard) {
    return;
  }
  button.hidden = false;
  var label = button.textContent;
  button.addEventListener("click", function () {
    navigator.clipboard.writeText(field.value).then(function () {
      button.textContent = button.getAttribute("data-copied-text");
      window.setTimeout(function () {
        button.textContent = label;
      }, 2000);
    });
  });
});
