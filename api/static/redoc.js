// Starts ReDoc on /redoc (a file, not an inline script, so the page's CSP holds).
Redoc.init("/openapi.json", {}, document.getElementById("redoc"));
