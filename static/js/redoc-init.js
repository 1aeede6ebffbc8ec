// Starts ReDoc on /api/redoc/ (kept out of the page so the CSP needs no inline script).
const container = document.getElementById("redoc-container");
Redoc.init(container.dataset.schemaUrl, { hideDownloadButton: false }, container);
