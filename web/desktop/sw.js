// The desktop's service worker: keeps the shell (the page, its scripts,
// styles and icons) so the desktop opens offline and installs as an app.
// It never stores API answers, app pages or anything else a person owns:
// every other request goes to the network untouched.
const CACHE = "matrixos-shell-v2";
const SHELL = [
  "/",
  "/_matrixos/desktop/style.css",
  "/_matrixos/desktop/session.js",
  "/_matrixos/desktop/desktop.js",
  "/_matrixos/desktop/notifications.js",
  "/_matrixos/desktop/icon.svg",
  "/_matrixos/desktop/icon-192.png",
  "/_matrixos/desktop/manifest.webmanifest",
];

self.addEventListener("install", (event) => {
  event.waitUntil(caches.open(CACHE).then((cache) => cache.addAll(SHELL)).then(() => self.skipWaiting()));
});

self.addEventListener("activate", (event) => {
  event.waitUntil(
    caches.keys()
      .then((keys) => Promise.all(keys.filter((k) => k !== CACHE).map((k) => caches.delete(k))))
      .then(() => self.clients.claim()),
  );
});

self.addEventListener("fetch", (event) => {
  const request = event.request;
  if (request.method !== "GET") return;
  const url = new URL(request.url);
  if (url.origin !== self.location.origin || url.search || !SHELL.includes(url.pathname)) return;
  // Network first, so an updated server's shell is used at once; the
  // cached copy when the network fails.
  event.respondWith(
    fetch(request)
      .then((response) => {
        if (response.ok) {
          const copy = response.clone();
          caches.open(CACHE).then((cache) => cache.put(url.pathname, copy));
        }
        return response;
      })
      .catch(() => caches.match(url.pathname).then((hit) => hit || Response.error())),
  );
});
