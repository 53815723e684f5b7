// The Matrix OS desktop: a client of the public client-server API (login,
// sync, send) and of /_matrixos/v1 with the person's own token. Apps open
// in sandboxed iframes (opaque origins: they cannot read this page, its
// storage or the token), each with its own capability in its address.

import {
  ApiError,
  api,
  applyTheme,
  bindLoginForm,
  clearSession,
  loadSession,
  logout,
} from "./session.js";
import { markRead, noteUnread, startNotifications } from "./notifications.js";

const $ = (id) => document.getElementById(id);
const enc = encodeURIComponent;
const narrow = window.matchMedia("(max-width: 899px)");

/** A DOM element: `h("li", { class: "x", dataset: { a: 1 } }, child, "text")`. */
function h(tag, props = {}, ...children) {
  const element = document.createElementNS(
    tag === "svg" || props.svg ? "http://www.w3.org/2000/svg" : "http://www.w3.org/1999/xhtml",
    tag,
  );
  for (const [key, value] of Object.entries(props)) {
    if (key === "svg" || value === false || value == null) continue;
    if (key === "class") element.setAttribute("class", value);
    else if (key === "dataset") Object.assign(element.dataset, value);
    else if (key.startsWith("on")) element.addEventListener(key.slice(2), value);
    else element.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child == null || child === false) continue;
    element.append(child instanceof Node ? child : String(child));
  }
  return element;
}

const state = {
  session: null,
  aiId: null,
  apps: [],
  windows: new Map(),
  topWindow: 1,
  view: "home",
  dmRoom: null,
  since: null,
  syncing: null,
  pending: null,
  pendingTimer: null,
  txns: new Map(),
  roomNames: {},
  lastDmEvent: null,
  usage: null,
  file: null,
};

// ---------------------------------------------------------------- start

updateThemeButton(applyTheme());
registerServiceWorker();
bindLoginForm($("login-form"), (session) => {
  state.session = session;
  enterDesktop();
});
wireDesktop();
state.session = loadSession();
if (state.session) enterDesktop();
else showLogin();

function registerServiceWorker() {
  if ("serviceWorker" in navigator && window.isSecureContext) {
    navigator.serviceWorker.register("/sw.js", { scope: "/" }).catch(() => {});
  }
}

function showLogin() {
  $("desktop-view").hidden = true;
  $("login-view").hidden = false;
  document.title = "Sign in · Matrix OS";
  $("login-user").focus();
}

function enterDesktop() {
  const me = state.session.user_id;
  state.aiId = aiOf(me);
  $("login-view").hidden = true;
  $("desktop-view").hidden = false;
  document.title = "Matrix OS";
  $("me").textContent = me;
  $("chat-name").textContent = state.aiId;
  setView("home");
  loadApps();
  startNotifications({ call, roomName, openRoom });
  startChat();
}

/** Shows a room: the chat with the AI here, any other in Element. */
function openRoom(id) {
  if (id === state.dmRoom) setView("chat");
  else window.open(`https://app.element.io/#/room/${enc(id)}`, "_blank", "noopener,noreferrer");
}

/** `@alice:example.org` → `@alice_ai:example.org`. */
function aiOf(userId) {
  const colon = userId.indexOf(":");
  return `${userId.slice(0, colon)}_ai${userId.slice(colon)}`;
}

function localpart(userId) {
  return userId.slice(1, userId.indexOf(":"));
}

/** The token stopped working (signed out elsewhere): back to sign-in. */
function sessionEnded() {
  stopSync();
  clearSession();
  state.session = null;
  closeAllWindows();
  showLogin();
  $("login-error").textContent = "Your session ended. Sign in again.";
}

async function call(method, path, body, options) {
  try {
    return await api(state.session, method, path, body, options);
  } catch (e) {
    if (e instanceof ApiError && e.status === 401 && e.errcode === "M_UNKNOWN_TOKEN") sessionEnded();
    throw e;
  }
}

// ---------------------------------------------------------------- chrome

function wireDesktop() {
  for (const button of document.querySelectorAll(".dock-item[data-view]")) {
    button.addEventListener("click", () => setView(button.dataset.view));
  }
  $("dock").addEventListener("keydown", dockKeys);
  $("logout").addEventListener("click", async () => {
    const session = state.session;
    stopSync();
    closeAllWindows();
    state.session = null;
    await logout(session);
    showLogin();
  });
  $("theme-toggle").addEventListener("click", () => {
    const order = ["auto", "light", "dark"];
    const current = localStorage.getItem("matrixos.theme") || "auto";
    const next = order[(order.indexOf(current) + 1) % order.length];
    if (next === "auto") localStorage.removeItem("matrixos.theme");
    else localStorage.setItem("matrixos.theme", next);
    updateThemeButton(applyTheme());
    if (state.usage && state.view === "usage") renderUsage(state.usage);
  });
  $("refresh-apps").addEventListener("click", loadApps);
  $("refresh-usage").addEventListener("click", loadUsage);
  $("refresh-files").addEventListener("click", loadFiles);
  $("file-save").addEventListener("click", saveFile);
  $("composer").addEventListener("submit", (event) => {
    event.preventDefault();
    sendMessage();
  });
  const input = $("composer-input");
  input.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      sendMessage();
    }
  });
  input.addEventListener("input", () => growComposer());
  document.addEventListener("keydown", (event) => {
    if (event.key !== "Escape") return;
    const win = document.activeElement && document.activeElement.closest(".window");
    if (win) closeWindow(win.dataset.slug);
  });
  new ResizeObserver(() => {
    if (state.usage && state.view === "usage") drawChart(state.usage);
  }).observe($("usage-chart"));
}

function updateThemeButton(theme) {
  const names = { auto: "follow the system", light: "light", dark: "dark" };
  const label = `Theme: ${names[theme] || names.auto} (change)`;
  $("theme-toggle").setAttribute("aria-label", label);
  $("theme-toggle").title = label;
}

/** Arrow keys move along the dock, Home and End jump to its ends. */
function dockKeys(event) {
  const items = [...document.querySelectorAll("#dock .dock-item")];
  const at = items.indexOf(document.activeElement);
  if (at < 0) return;
  const moves = { ArrowDown: 1, ArrowRight: 1, ArrowUp: -1, ArrowLeft: -1 };
  let next = null;
  if (event.key in moves) next = (at + moves[event.key] + items.length) % items.length;
  if (event.key === "Home") next = 0;
  if (event.key === "End") next = items.length - 1;
  if (next === null) return;
  event.preventDefault();
  items[next].focus();
}

/** home | usage | windows | chat. On a wide screen the chat is always shown. */
function setView(view) {
  if (view === "chat" && !narrow.matches) {
    $("composer-input").focus();
    return;
  }
  if (view === "windows" && state.windows.size === 0) view = "home";
  state.view = view;
  $("desktop-view").dataset.view = view;
  $("home-panel").hidden = view !== "home";
  $("usage-panel").hidden = view !== "usage";
  $("files-panel").hidden = view !== "files";
  $("windows-panel").hidden = view !== "windows";
  for (const button of document.querySelectorAll(".dock-item[data-view]")) {
    if (button.dataset.view === view) button.setAttribute("aria-current", "page");
    else button.removeAttribute("aria-current");
  }
  for (const button of document.querySelectorAll(".dock-item.app")) {
    const focused = view === "windows" && state.windows.get(button.dataset.slug)?.classList.contains("focused");
    if (focused) button.setAttribute("aria-current", "page");
    else button.removeAttribute("aria-current");
  }
  if (view === "usage") loadUsage();
  if (view === "files") loadFiles();
  if (view === "chat") {
    scrollChat(true);
    markChatRead();
  }
}

/** The chat with the AI is read up to its last message while it shows. */
function markChatRead() {
  if (!state.dmRoom || !state.lastDmEvent) return;
  if (narrow.matches && state.view !== "chat") return;
  if (document.hidden) return;
  markRead(state.dmRoom, state.lastDmEvent);
}

narrow.addEventListener("change", () => {
  if (state.view === "chat" && !narrow.matches) setView("home");
});

// ---------------------------------------------------------------- apps

async function loadApps() {
  try {
    const answer = await call("GET", "/_matrixos/v1/apps");
    state.apps = answer.apps || [];
  } catch {
    state.apps = [];
  }
  renderApps();
}

/** A stable colour per app, from its slug. */
function colorOf(slug) {
  let hash = 0;
  for (const c of slug) hash = (hash * 31 + c.charCodeAt(0)) >>> 0;
  return `hsl(${hash % 360} 52% 46%)`;
}

function glyph(app, className = "glyph") {
  const g = h("span", { class: className, "aria-hidden": "true" }, (app.name || app.slug).trim().charAt(0).toUpperCase());
  return g;
}

function renderApps() {
  const grid = $("app-grid");
  const dock = $("dock-apps");
  grid.replaceChildren();
  dock.replaceChildren();
  for (const app of state.apps) {
    const tile = h(
      "button",
      { class: "app-tile", type: "button", dataset: { slug: app.slug }, onclick: () => openApp(app) },
      glyph(app),
      h("span", { class: "name" }, app.name || app.slug),
      h("span", { class: "desc" }, app.description || `/${app.slug}`),
    );
    tile.style.setProperty("--app-color", colorOf(app.slug));
    grid.append(h("li", {}, tile));
    const item = h(
      "button",
      {
        class: "dock-item app",
        type: "button",
        title: app.name || app.slug,
        dataset: { slug: app.slug },
        onclick: () => openApp(app),
      },
      glyph(app),
      h("span", { class: "label" }, app.name || app.slug),
    );
    item.style.setProperty("--app-color", colorOf(app.slug));
    if (state.windows.has(app.slug)) item.classList.add("open");
    dock.append(item);
  }
  $("apps-empty").hidden = state.apps.length > 0;
}

function openApp(app) {
  let win = state.windows.get(app.slug);
  if (!win) {
    const frame = h("iframe", {
      src: app.url,
      title: `App: ${app.name || app.slug}`,
      sandbox: "allow-scripts allow-forms",
      referrerpolicy: "no-referrer",
      allow: "",
    });
    const maximise = h(
      "button",
      { class: "icon-btn", type: "button", "aria-label": `Maximise ${app.name}`, "aria-pressed": "false" },
      icon("M4 9V4h5M20 9V4h-5M4 15v5h5M20 15v5h-5"),
    );
    const close = h(
      "button",
      { class: "icon-btn", type: "button", "aria-label": `Close ${app.name}` },
      icon("M6 6l12 12M18 6L6 18"),
    );
    const bar = h("div", { class: "window-bar" }, glyph(app), h("span", { class: "title" }, app.name || app.slug), maximise, close);
    win = h("section", { class: "window", "aria-label": app.name || app.slug, dataset: { slug: app.slug } }, bar, frame);
    win.style.setProperty("--app-color", colorOf(app.slug));
    win.addEventListener("pointerdown", () => focusWindow(app.slug));
    win.addEventListener("focusin", () => focusWindow(app.slug));
    maximise.addEventListener("click", () => {
      const max = !win.classList.contains("max");
      for (const other of state.windows.values()) other.classList.remove("max");
      win.classList.toggle("max", max);
      maximise.setAttribute("aria-pressed", String(max));
      $("windows").classList.toggle("has-max", max);
    });
    close.addEventListener("click", () => closeWindow(app.slug));
    makeMovable(win, bar);
    state.windows.set(app.slug, win);
    $("windows").append(win);
  }
  focusWindow(app.slug);
  setView("windows");
  win.querySelector(".window-bar .icon-btn").focus({ preventScroll: true });
  markOpenApps();
}

function icon(path) {
  return h(
    "svg",
    { viewBox: "0 0 24 24", fill: "none", stroke: "currentColor", "stroke-width": "2", "stroke-linecap": "round", "aria-hidden": "true" },
    h("path", { svg: true, d: path }),
  );
}

/**
 * On a wide screen a window leaves the tiling when its title bar is
 * dragged (or moved with Alt+arrows) and floats where it is put, resizable
 * from its corner (Alt+Shift+arrows); a double click on the bar tiles it
 * again. On a phone windows stay full-size, one at a time.
 */
function makeMovable(win, bar) {
  bar.title = "Drag to move, double-click to tile again. Keyboard: Alt+arrows move, Alt+Shift+arrows resize.";
  bar.addEventListener("pointerdown", (event) => {
    if (narrow.matches || win.classList.contains("max") || event.button !== 0 || event.target.closest("button")) return;
    event.preventDefault();
    const area = $("windows").getBoundingClientRect();
    const rect = win.getBoundingClientRect();
    floatWindow(win, rect);
    const grab = { x: event.clientX - rect.left, y: event.clientY - rect.top };
    bar.setPointerCapture(event.pointerId);
    win.classList.add("dragging");
    const move = (e) => placeWindow(win, e.clientX - area.left - grab.x, e.clientY - area.top - grab.y);
    const stop = () => {
      bar.removeEventListener("pointermove", move);
      win.classList.remove("dragging");
    };
    bar.addEventListener("pointermove", move);
    bar.addEventListener("pointerup", stop, { once: true });
    bar.addEventListener("pointercancel", stop, { once: true });
  });
  bar.addEventListener("dblclick", (event) => {
    if (!event.target.closest("button")) tileWindow(win);
  });
  win.addEventListener("keydown", (event) => {
    const step = { ArrowLeft: [-24, 0], ArrowRight: [24, 0], ArrowUp: [0, -24], ArrowDown: [0, 24] }[event.key];
    if (!step || !event.altKey || narrow.matches || win.classList.contains("max")) return;
    event.preventDefault();
    floatWindow(win, win.getBoundingClientRect());
    if (event.shiftKey) {
      win.style.width = `${Math.max(280, win.offsetWidth + step[0])}px`;
      win.style.height = `${Math.max(200, win.offsetHeight + step[1])}px`;
    } else {
      placeWindow(win, win.offsetLeft + step[0], win.offsetTop + step[1]);
    }
  });
}

/** Takes a tiled window out of the grid at the place and size it had. */
function floatWindow(win, rect) {
  if (win.classList.contains("floating")) return;
  const area = $("windows").getBoundingClientRect();
  win.style.width = `${rect.width}px`;
  win.style.height = `${rect.height}px`;
  win.classList.add("floating");
  placeWindow(win, rect.left - area.left, rect.top - area.top);
  focusWindow(win.dataset.slug);
}

/** Moves a floating window, keeping its title bar within reach. */
function placeWindow(win, x, y) {
  const area = $("windows");
  const left = Math.min(Math.max(x, 80 - win.offsetWidth), area.clientWidth - 80);
  const top = Math.min(Math.max(y, 0), Math.max(0, area.clientHeight - 46));
  win.style.left = `${Math.round(left)}px`;
  win.style.top = `${Math.round(top)}px`;
}

function tileWindow(win) {
  win.classList.remove("floating");
  for (const property of ["left", "top", "width", "height", "z-index"]) win.style.removeProperty(property);
}

function focusWindow(slug) {
  for (const [key, win] of state.windows) win.classList.toggle("focused", key === slug);
  const win = state.windows.get(slug);
  if (win && win.classList.contains("floating")) win.style.zIndex = String(++state.topWindow);
  if (state.view === "windows") {
    for (const button of document.querySelectorAll(".dock-item.app")) {
      if (button.dataset.slug === slug) button.setAttribute("aria-current", "page");
      else button.removeAttribute("aria-current");
    }
  }
}

function closeWindow(slug) {
  const win = state.windows.get(slug);
  if (!win) return;
  if (win.classList.contains("max")) $("windows").classList.remove("has-max");
  win.remove();
  state.windows.delete(slug);
  markOpenApps();
  const last = [...state.windows.keys()].pop();
  if (last) {
    focusWindow(last);
    state.windows.get(last).querySelector(".window-bar .icon-btn").focus();
  } else {
    setView("home");
    document.querySelector('.dock-item[data-view="home"]').focus();
  }
}

function closeAllWindows() {
  for (const win of state.windows.values()) win.remove();
  state.windows.clear();
  $("windows").classList.remove("has-max");
}

function markOpenApps() {
  for (const button of document.querySelectorAll(".dock-item.app")) {
    button.classList.toggle("open", state.windows.has(button.dataset.slug));
  }
}

/** A link the AI sent to one of the person's own apps opens in a window. */
async function openAppLink(url) {
  const match = url.pathname.match(/^\/_matrixos\/apps\/([^/]+)\/([^/]+)\/?$/);
  if (!match || decodeURIComponent(match[1]) !== localpart(state.session.user_id)) return false;
  const slug = decodeURIComponent(match[2]);
  let app = state.apps.find((a) => a.slug === slug);
  if (!app) {
    await loadApps();
    app = state.apps.find((a) => a.slug === slug);
  }
  if (!app) return false;
  openApp(app);
  return true;
}

// ---------------------------------------------------------------- chat

const FILTER = JSON.stringify({
  room: { timeline: { limit: 30 }, state: { lazy_load_members: true } },
  presence: { types: [] },
});

function syncPath(since, timeout) {
  const base = `/_matrix/client/v3/sync?filter=${enc(FILTER)}&timeout=${timeout}`;
  return since ? `${base}&since=${enc(since)}` : base;
}

function setChatState(text) {
  $("chat-state").textContent = text;
}

async function startChat() {
  stopSync();
  const controller = new AbortController();
  state.syncing = controller;
  $("messages").replaceChildren();
  state.pending = null;
  state.dmRoom = null;
  setChatState("Connecting…");
  let first;
  for (let delay = 1000; ; delay = Math.min(delay * 2, 30000)) {
    try {
      first = await call("GET", syncPath(null, 0), undefined, { signal: controller.signal });
      break;
    } catch (e) {
      if (controller.signal.aborted || (e instanceof ApiError && e.status === 401)) return;
      setChatState("Offline, retrying…");
      await sleep(delay);
    }
  }
  state.since = first.next_batch;
  const joined = (first.rooms && first.rooms.join) || {};
  noteRoomNames(joined);
  const direct = accountData(first, "m.direct") || {};
  let room = (direct[state.aiId] || []).find((r) => joined[r]);
  try {
    if (!room) room = await createDm(direct);
  } catch (e) {
    setChatState(`No chat room: ${e.message}`);
    return;
  }
  state.dmRoom = room;
  const element = `https://app.element.io/#/room/${enc(room)}`;
  $("chat-element").href = element;
  $("element-link").href = element;
  const timeline = joined[room] ? joined[room].timeline.events : [];
  for (const event of timeline) addEvent(event, false);
  noteUnread(joined);
  markChatRead();
  if (!$("messages").children.length) showChatEmpty();
  scrollChat(true);
  setChatState("Online");
  syncLoop(controller);
  liveLoop(controller);
}

function stopSync() {
  if (state.syncing) state.syncing.abort();
  state.syncing = null;
}

function accountData(sync, type) {
  const events = (sync.account_data && sync.account_data.events) || [];
  const found = events.find((e) => e.type === type);
  return found && found.content;
}

function noteRoomNames(joined) {
  for (const [id, room] of Object.entries(joined)) {
    const events = [...((room.state && room.state.events) || []), ...((room.timeline && room.timeline.events) || [])];
    for (const event of events) {
      if (event.type === "m.room.name" && event.content && event.content.name) state.roomNames[id] = event.content.name;
    }
  }
}

/** The direct chat with the AI, when the server has not made one. */
async function createDm(direct) {
  const created = await call("POST", "/_matrix/client/v3/createRoom", {
    preset: "trusted_private_chat",
    is_direct: true,
    invite: [state.aiId],
  });
  const me = enc(state.session.user_id);
  direct[state.aiId] = [...(direct[state.aiId] || []), created.room_id];
  await call("PUT", `/_matrix/client/v3/user/${me}/account_data/m.direct`, direct);
  return created.room_id;
}

async function syncLoop(controller) {
  let delay = 1000;
  while (!controller.signal.aborted) {
    try {
      const answer = await call("GET", syncPath(state.since, 30000), undefined, { signal: controller.signal });
      if (controller.signal.aborted) return;
      state.since = answer.next_batch;
      delay = 1000;
      setChatState("Online");
      const joined = (answer.rooms && answer.rooms.join) || {};
      noteRoomNames(joined);
      noteUnread(joined);
      const room = joined[state.dmRoom];
      if (room && room.timeline) for (const event of room.timeline.events) addEvent(event, true);
      markChatRead();
    } catch (e) {
      if (controller.signal.aborted || (e instanceof ApiError && e.status === 401)) return;
      setChatState("Offline, reconnecting…");
      await sleep(delay);
      delay = Math.min(delay * 2, 30000);
    }
  }
}

/**
 * The AI's answer as the model writes it: the server's stream of answers
 * in progress (server-sent events over fetch, so that the token stays in
 * the Authorization header). The text fills the answer's reserved place;
 * the posted message replaces it when it comes through /sync.
 */
async function liveLoop(controller) {
  let delay = 1000;
  while (!controller.signal.aborted) {
    try {
      const response = await fetch("/_matrixos/v1/ai/live", {
        headers: { Authorization: `Bearer ${state.session.access_token}`, Accept: "text/event-stream" },
        signal: controller.signal,
      });
      if (!response.ok || !response.body) throw new Error(`live answers: HTTP ${response.status}`);
      delay = 1000;
      const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
      let buffer = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += value;
        for (let end = buffer.indexOf("\n\n"); end >= 0; end = buffer.indexOf("\n\n")) {
          const data = buffer
            .slice(0, end)
            .split("\n")
            .filter((line) => line.startsWith("data:"))
            .map((line) => line.slice(5).trimStart())
            .join("\n");
          buffer = buffer.slice(end + 2);
          if (data) showLiveAnswer(JSON.parse(data).answers || {});
        }
      }
    } catch (e) {
      if (controller.signal.aborted) return;
      console.warn("live answers:", e.message);
    }
    await sleep(delay);
    delay = Math.min(delay * 2, 30000);
  }
}

function showLiveAnswer(answers) {
  const text = state.dmRoom && answers[state.dmRoom];
  if (!text) return;
  if (!state.pending) {
    state.pending = messageElement({ mine: false, pending: true });
    appendMessage(state.pending);
  }
  const item = state.pending;
  item.classList.add("streaming");
  fillBubble(item.querySelector(".bubble"), text, false);
  item.querySelector(".meta").textContent = "AI · writing…";
  scrollChat(false);
}

function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function showChatEmpty() {
  $("messages").append(
    h("li", { class: "chat-empty", id: "chat-empty" }, `Say hello to ${state.aiId}. Ask it to build an app, remember something or explain what it costs.`),
  );
}

function messageItem(event) {
  return document.querySelector(`#messages li[data-event-id="${CSS.escape(event)}"]`);
}

function addEvent(event, live) {
  if (event.event_id) state.lastDmEvent = event.event_id;
  if (event.type !== "m.room.message" || !event.content) return;
  const content = event.content;
  const relation = content["m.relates_to"];
  if (relation && relation.rel_type === "m.replace") {
    const original = messageItem(relation.event_id);
    const replacement = content["m.new_content"];
    if (original && replacement && typeof replacement.body === "string") {
      fillBubble(original.querySelector(".bubble"), replacement.body, original.classList.contains("ai"));
    }
    return;
  }
  if (messageItem(event.event_id)) return;
  const txn = event.unsigned && event.unsigned.transaction_id;
  if (txn && state.txns.has(txn)) {
    const echo = state.txns.get(txn);
    echo.dataset.eventId = event.event_id;
    echo.classList.remove("sending");
    state.txns.delete(txn);
    return;
  }
  const mine = event.sender === state.session.user_id;
  const body = typeof content.body === "string" ? content.body : "";
  if (!mine && live && state.pending) {
    const item = state.pending;
    state.pending = null;
    clearTimeout(state.pendingTimer);
    item.classList.remove("pending", "streaming");
    item.removeAttribute("aria-busy");
    item.dataset.eventId = event.event_id;
    fillBubble(item.querySelector(".bubble"), body, true);
    item.querySelector(".meta").textContent = `AI · ${time(event.origin_server_ts)}`;
    loadApps();
    return;
  }
  const item = messageElement({ mine, body, ts: event.origin_server_ts, eventId: event.event_id });
  appendMessage(item);
  if (!mine && live) loadApps();
}

function time(ts) {
  return new Date(ts || Date.now()).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
}

function messageElement({ mine, body, ts, eventId, pending }) {
  const bubble = h("div", { class: "bubble" });
  if (pending) {
    bubble.append(h("span", { class: "dots", "aria-hidden": "true" }, h("i"), h("i"), h("i")), "Thinking…");
  } else {
    fillBubble(bubble, body, !mine);
  }
  return h(
    "li",
    {
      class: `msg ${mine ? "me" : "ai"}${pending ? " pending" : ""}`,
      dataset: eventId ? { eventId } : {},
      "aria-busy": pending ? "true" : null,
    },
    bubble,
    h("span", { class: "meta" }, pending ? "" : `${mine ? "You" : "AI"} · ${time(ts)}`),
  );
}

const URL_PATTERN = /https?:\/\/[^\s<>"'`]+[^\s<>"'`.,;:!?)\]]/g;

/** Text with its links made clickable; links to the person's apps open here. */
function fillBubble(bubble, text, linkify) {
  bubble.replaceChildren();
  if (!linkify) {
    bubble.textContent = text;
    return;
  }
  let last = 0;
  for (const match of text.matchAll(URL_PATTERN)) {
    bubble.append(text.slice(last, match.index));
    const href = match[0];
    const link = h("a", { href, target: "_blank", rel: "noopener noreferrer" }, href);
    let url = null;
    try {
      url = new URL(href);
    } catch {
      // Shown as text.
    }
    if (url && url.origin === location.origin) {
      link.addEventListener("click", async (event) => {
        event.preventDefault();
        if (!(await openAppLink(url))) window.open(href, "_blank", "noopener,noreferrer");
      });
    }
    bubble.append(link);
    last = match.index + href.length;
  }
  bubble.append(text.slice(last));
}

function nearBottom() {
  const list = $("messages");
  return list.scrollHeight - list.scrollTop - list.clientHeight < 80;
}

function scrollChat(force) {
  const list = $("messages");
  if (force || nearBottom()) list.scrollTop = list.scrollHeight;
}

function appendMessage(item) {
  const stick = nearBottom();
  const empty = $("chat-empty");
  if (empty) empty.remove();
  const list = $("messages");
  // The answer's reserved place stays last.
  if (state.pending && state.pending.isConnected && item !== state.pending) list.insertBefore(item, state.pending);
  else list.append(item);
  if (stick) scrollChat(true);
  return item;
}

function growComposer() {
  const input = $("composer-input");
  input.style.height = "auto";
  input.style.height = `${Math.min(input.scrollHeight + 2, 160)}px`;
}

async function sendMessage() {
  const input = $("composer-input");
  const text = input.value.trim();
  if (!text || !state.dmRoom) return;
  input.value = "";
  growComposer();
  const txn = `desk${Date.now()}${Math.random().toString(36).slice(2, 8)}`;
  const item = messageElement({ mine: true, body: text, ts: Date.now() });
  item.classList.add("sending");
  state.txns.set(txn, item);
  appendMessage(item);
  if (!state.pending) {
    state.pending = messageElement({ mine: false, pending: true });
    appendMessage(state.pending);
  }
  clearTimeout(state.pendingTimer);
  state.pendingTimer = setTimeout(() => {
    if (state.pending) state.pending.remove();
    state.pending = null;
  }, 180000);
  scrollChat(true);
  try {
    const path = `/_matrix/client/v3/rooms/${enc(state.dmRoom)}/send/m.room.message/${enc(txn)}`;
    const sent = await call("PUT", path, { msgtype: "m.text", body: text });
    if (state.txns.has(txn)) {
      item.dataset.eventId = sent.event_id;
      item.classList.remove("sending");
      state.txns.delete(txn);
    }
  } catch (e) {
    state.txns.delete(txn);
    item.classList.remove("sending");
    item.querySelector(".meta").textContent = `Not sent: ${e.message}`;
    if (state.pending) state.pending.remove();
    state.pending = null;
  }
}

// ---------------------------------------------------------------- usage

async function loadUsage() {
  try {
    state.usage = await call("GET", "/_matrixos/v1/usage?days=30");
    renderUsage(state.usage);
  } catch (e) {
    $("usage-title").nextElementSibling.textContent = `Could not load the ledger: ${e.message}`;
  }
}

/** The UTC date `offset` days from today, as the ledger writes it. */
function utcDate(offset) {
  return new Date(Date.now() + offset * 86400000).toISOString().slice(0, 10);
}

function money(usd) {
  if (usd === 0) return "$0.00";
  return usd < 0.01 ? `$${usd.toFixed(4)}` : `$${usd.toFixed(2)}`;
}

function count(n) {
  return n.toLocaleString("en-US");
}

function sum(days) {
  return days.reduce(
    (acc, d) => ({
      cost: acc.cost + d.cost_usd,
      tokens: acc.tokens + d.tokens_in + d.tokens_out,
      runs: acc.runs + d.runs,
    }),
    { cost: 0, tokens: 0, runs: 0 },
  );
}

function setStat(id, totals) {
  const card = document.querySelector(`[data-testid="${id}"]`);
  const runs = `${count(totals.runs)} ${totals.runs === 1 ? "run" : "runs"}`;
  const fields = { cost: money(totals.cost), tokens: count(totals.tokens), runs };
  for (const [field, text] of Object.entries(fields)) {
    const cell = card.querySelector(`[data-field="${field}"]`);
    cell.textContent = text;
    cell.dataset.value = String(totals[field]);
  }
}

function renderUsage(usage) {
  const days = usage.days || [];
  const today = utcDate(0);
  const weekStart = utcDate(-6);
  setStat("today", sum(days.filter((d) => d.date === today)));
  setStat("week", sum(days.filter((d) => d.date >= weekStart)));
  const t = usage.totals;
  setStat("month", { cost: t.cost_usd, tokens: t.tokens_in + t.tokens_out, runs: t.runs });
  drawChart(usage);
  fillTable("per-room", usage.per_room || [], (r) => roomName(r.room), "room");
  fillTable("per-model", usage.per_model || [], (r) => r.model, "model");
  const runs = document.querySelector('[data-testid="runs"] tbody');
  runs.replaceChildren();
  for (const run of (usage.runs || []).slice(0, 25)) {
    const tools = run.tools && run.tools.length ? `Tools: ${run.tools.map((x) => x.name).join(", ")}` : "";
    runs.append(
      h(
        "tr",
        {},
        h("td", {}, new Date(run.started_ms).toLocaleString([], { month: "short", day: "numeric", hour: "2-digit", minute: "2-digit" })),
        h("td", {}, run.request || "(no text)", tools ? h("div", { class: "tools" }, tools) : null, run.error ? h("div", { class: "tools" }, `Error: ${run.error}`) : null),
        h("td", { class: "num" }, count(run.tokens_in + run.tokens_out)),
        h("td", { class: "num" }, money(run.cost_usd)),
      ),
    );
  }
  if (!runs.children.length) runs.append(h("tr", {}, h("td", { colspan: "4", class: "muted" }, "No runs yet.")));
}

function roomName(id) {
  if (state.roomNames[id]) return state.roomNames[id];
  if (id === state.dmRoom) return `Chat with ${localpart(state.aiId)}`;
  return id;
}

function fillTable(testid, rows, name, key) {
  const body = document.querySelector(`[data-testid="${testid}"] tbody`);
  body.replaceChildren();
  for (const row of rows) {
    const tokens = row.tokens_in + row.tokens_out;
    body.append(
      h(
        "tr",
        { dataset: { key: row[key] } },
        h("td", {}, name(row)),
        h("td", { class: "num", dataset: { field: "runs", value: String(row.runs) } }, count(row.runs)),
        h("td", { class: "num", dataset: { field: "tokens", value: String(tokens) } }, count(tokens)),
        h("td", { class: "num", dataset: { field: "cost", value: String(row.cost_usd) } }, money(row.cost_usd)),
      ),
    );
  }
  if (!rows.length) body.append(h("tr", {}, h("td", { colspan: "4", class: "muted" }, "Nothing yet.")));
}

/** Bars per UTC day for the last 14 days: cost, or tokens when nothing cost money. */
function drawChart(usage) {
  const svg = $("usage-chart");
  const width = Math.max(280, Math.round(svg.getBoundingClientRect().width) || 600);
  const height = 200;
  svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
  svg.replaceChildren();
  const byDate = new Map((usage.days || []).map((d) => [d.date, d]));
  const dates = Array.from({ length: 14 }, (_, i) => utcDate(i - 13));
  const anyCost = dates.some((d) => byDate.get(d) && byDate.get(d).cost_usd > 0);
  const value = (d) => {
    const day = byDate.get(d);
    if (!day) return 0;
    return anyCost ? day.cost_usd : day.tokens_in + day.tokens_out;
  };
  $("chart-title").textContent = anyCost ? "Cost per day, last 14 days" : "Tokens per day, last 14 days";
  const max = Math.max(...dates.map(value), 0);
  const top = 22;
  const bottom = height - 26;
  const left = 8;
  const slot = (width - left * 2) / dates.length;
  const barWidth = Math.max(6, slot * 0.62);
  svg.append(h("line", { svg: true, class: "axis", x1: left, x2: width - left, y1: bottom + 0.5, y2: bottom + 0.5 }));
  svg.append(h("text", { svg: true, x: left, y: 12 }, max ? `max ${anyCost ? money(max) : count(max)}` : "nothing yet"));
  dates.forEach((date, i) => {
    const v = value(date);
    const barHeight = max ? Math.max(v > 0 ? 2 : 0, ((bottom - top) * v) / max) : 0;
    const x = left + i * slot + (slot - barWidth) / 2;
    const bar = h("rect", {
      svg: true,
      class: date === utcDate(0) ? "bar today" : "bar",
      x: x.toFixed(1),
      y: (bottom - barHeight).toFixed(1),
      width: barWidth.toFixed(1),
      height: barHeight.toFixed(1),
      rx: 3,
      dataset: { date, value: String(v) },
    });
    bar.append(h("title", { svg: true }, `${date}: ${anyCost ? money(v) : `${count(v)} tokens`}`));
    svg.append(bar);
    if (i % 2 === 1 || slot > 44) {
      svg.append(h("text", { svg: true, x: (x + barWidth / 2).toFixed(1), y: height - 8, "text-anchor": "middle" }, date.slice(5)));
    }
  });
}

// ---------------------------------------------------------------- files

const SETTINGS = {
  "system/soul.md": "SOUL: who your AI is",
  "system/profile.md": "Your profile",
  "system/ai-profile.md": "Your AI's profile",
  "system/privacy.json": "Privacy: who may see what",
};

function q(path, extra = "") {
  return `?path=${enc(path)}${extra}`;
}

async function loadFiles() {
  let answer;
  try {
    answer = await call("GET", "/_matrixos/v1/files");
  } catch (e) {
    $("file-empty").textContent = `Could not list your files: ${e.message}`;
    return;
  }
  const settings = $("settings-list");
  settings.replaceChildren();
  for (const path of answer.editable || Object.keys(SETTINGS)) {
    settings.append(h("li", {}, fileButton(path, SETTINGS[path] || path)));
  }
  const list = $("file-list");
  list.replaceChildren();
  let dir = null;
  for (const entry of answer.files || []) {
    if (entry.endsWith("/")) continue;
    const slash = entry.lastIndexOf("/");
    const parent = slash < 0 ? "" : entry.slice(0, slash + 1);
    if (parent !== dir) {
      dir = parent;
      if (parent) list.append(h("li", { class: "dir", "aria-hidden": "true" }, parent));
    }
    list.append(h("li", {}, fileButton(entry, entry.slice(slash + 1), parent ? `${parent}` : "")));
  }
  markCurrentFile();
}

function fileButton(path, label) {
  return h("button", { type: "button", dataset: { path }, title: path, onclick: () => openFile(path) }, label);
}

function markCurrentFile() {
  for (const button of document.querySelectorAll(".file-list button")) {
    if (button.dataset.path === state.file) button.setAttribute("aria-current", "true");
    else button.removeAttribute("aria-current");
  }
}

async function openFile(path) {
  state.file = path;
  markCurrentFile();
  $("file-error").textContent = "";
  $("file-status").textContent = "";
  $("file-diff").hidden = true;
  let file;
  try {
    file = await call("GET", `/_matrixos/v1/files/content${q(path)}`);
  } catch (e) {
    $("file-empty").hidden = false;
    $("file-empty").textContent = `Could not open ${path}: ${e.message}`;
    $("file-editor").hidden = true;
    $("file-history-block").hidden = true;
    return;
  }
  $("file-empty").hidden = true;
  $("file-editor").hidden = false;
  $("file-path").textContent = path;
  const content = $("file-content");
  content.value = file.content;
  content.readOnly = !file.editable;
  $("file-mode").textContent = file.editable ? "Editable" : "Read only";
  $("file-mode").className = file.editable ? "badge edit" : "badge";
  $("file-save").hidden = !file.editable;
  await loadHistory(path);
  if (narrow.matches) $("file-editor").scrollIntoView({ block: "start" });
}

async function loadHistory(path) {
  const list = $("file-history");
  list.replaceChildren();
  $("file-history-block").hidden = false;
  let answer;
  try {
    answer = await call("GET", `/_matrixos/v1/files/history${q(path)}`);
  } catch (e) {
    list.append(h("li", {}, `No history: ${e.message}`));
    return;
  }
  answer.commits.forEach((commit, i) => {
    const when = new Date(commit.time * 1000).toLocaleString([], { dateStyle: "medium", timeStyle: "short" });
    list.append(
      h(
        "li",
        { dataset: { rev: commit.id } },
        h("span", { class: "what" }, commit.message, h("span", { class: "when" }, `${when} · ${commit.id.slice(0, 8)}`)),
        h("button", { class: "btn ghost small", type: "button", onclick: () => showDiff(path, commit.id) }, "Changes"),
        i === 0
          ? h("span", { class: "badge" }, "Current")
          : h("button", { class: "btn ghost small restore", type: "button", onclick: () => restoreFile(path, commit.id) }, "Restore"),
      ),
    );
  });
}

async function showDiff(path, rev) {
  const pre = $("file-diff");
  try {
    const answer = await call("GET", `/_matrixos/v1/files/diff${q(path, `&rev=${enc(rev)}`)}`);
    pre.textContent = answer.diff || "(no change to this file)";
  } catch (e) {
    pre.textContent = `Could not show the changes: ${e.message}`;
  }
  pre.hidden = false;
}

async function saveFile() {
  const path = state.file;
  $("file-error").textContent = "";
  $("file-status").textContent = "Saving…";
  try {
    await call("PUT", `/_matrixos/v1/files/content${q(path)}`, { content: $("file-content").value });
    $("file-status").textContent = "Saved";
    await loadHistory(path);
  } catch (e) {
    $("file-status").textContent = "";
    $("file-error").textContent = e.message;
  }
}

async function restoreFile(path, rev) {
  $("file-error").textContent = "";
  try {
    await call("POST", "/_matrixos/v1/files/restore", { path, rev });
    await openFile(path);
    $("file-status").textContent = `Restored from ${rev.slice(0, 8)}`;
  } catch (e) {
    $("file-error").textContent = `Could not restore: ${e.message}`;
  }
}
