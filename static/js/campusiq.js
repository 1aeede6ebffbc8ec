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
