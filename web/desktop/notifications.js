// The desktop's notifications: a bell with the number of unread
// notifications across the person's rooms (the counts /sync gives per
// room), a panel listing them from GET /_matrix/client/v3/notifications
// (what the server's push rules chose), "mark all read" through read
// receipts, and, when the person allows it, a system notification for a
// new one while the desktop is in the background.

const $ = (id) => document.getElementById(id);
const enc = encodeURIComponent;

/** What the module needs from the desktop. */
let desk = null;
/** Room id → unread notifications, as /sync last said. */
let unread = {};
let open = false;
/** The page-wide listeners are added once, whoever signs in. */
let listening = false;

/**
 * `call(method, path, body)` reaches the API with the session; `roomName(id)`
 * names a room; `openRoom(id)` shows it (the AI's chat here, others in Element).
 */
export function startNotifications({ call, roomName, openRoom }) {
  desk = { call, roomName, openRoom };
  unread = {};
  showCount();
  $("notify-toggle").onclick = () => (open ? closePanel() : openPanel());
  $("notify-read").onclick = markAllRead;
  $("notify-allow").onclick = async () => {
    if ("Notification" in window) await Notification.requestPermission();
    showAllowButton();
  };
  if (!listening) {
    listening = true;
    document.addEventListener("keydown", (event) => {
      if (event.key === "Escape" && open) {
        closePanel();
        $("notify-toggle").focus();
      }
    });
    document.addEventListener("click", (event) => {
      if (open && !event.target.closest(".notify-wrap")) closePanel();
    });
  }
  showAllowButton();
}

/** Takes a /sync answer's joined rooms: their unread counts. */
export function noteUnread(joined) {
  let grew = false;
  for (const [id, room] of Object.entries(joined)) {
    const counts = room.unread_notifications;
    if (!counts) continue;
    const count = counts.notification_count || 0;
    if (count > (unread[id] || 0)) grew = true;
    unread[id] = count;
  }
  showCount();
  if (grew) {
    if (open) loadList();
    if (document.hidden) announceNewest();
  }
}

function total() {
  return Object.values(unread).reduce((sum, n) => sum + n, 0);
}

function showCount() {
  const n = total();
  const badge = $("notify-count");
  badge.hidden = n === 0;
  badge.textContent = n > 99 ? "99+" : String(n);
  $("notify-toggle").setAttribute("aria-label", n ? `Notifications, ${n} unread` : "Notifications");
}

function showAllowButton() {
  const button = $("notify-allow");
  button.hidden = !("Notification" in window) || Notification.permission !== "default";
}

async function openPanel() {
  open = true;
  $("notify-panel").hidden = false;
  $("notify-toggle").setAttribute("aria-expanded", "true");
  await loadList();
}

function closePanel() {
  open = false;
  $("notify-panel").hidden = true;
  $("notify-toggle").setAttribute("aria-expanded", "false");
}

let listed = [];

async function loadList() {
  const list = $("notify-list");
  try {
    const answer = await desk.call("GET", "/_matrix/client/v3/notifications?limit=20");
    listed = answer.notifications || [];
  } catch (e) {
    list.replaceChildren(item(null, `Notifications could not be read: ${e.message}`));
    return;
  }
  list.replaceChildren(...listed.map((n) => item(n)));
  $("notify-empty").hidden = listed.length > 0;
  $("notify-read").disabled = !listed.some((n) => !n.read);
}

function item(notification, text) {
  const li = document.createElement("li");
  if (!notification) {
    li.textContent = text;
    return li;
  }
  const event = notification.event || {};
  const body = (event.content && typeof event.content.body === "string" && event.content.body) || describe(event);
  li.className = notification.read ? "notification" : "notification unread";
  li.dataset.room = notification.room_id;
  const button = document.createElement("button");
  button.type = "button";
  const title = document.createElement("span");
  title.className = "notify-title";
  title.textContent = desk.roomName(notification.room_id);
  const when = document.createElement("time");
  when.textContent = new Date(notification.ts || event.origin_server_ts || Date.now()).toLocaleString([], {
    dateStyle: "short",
    timeStyle: "short",
  });
  const line = document.createElement("span");
  line.className = "notify-body";
  line.textContent = `${event.sender || ""}: ${body}`.slice(0, 200);
  button.append(title, when, line);
  button.onclick = () => {
    closePanel();
    desk.openRoom(notification.room_id);
  };
  li.append(button);
  return li;
}

function describe(event) {
  if (event.type === "m.room.member") return "invited you";
  if (event.type === "m.room.encrypted") return "sent an encrypted message";
  return event.type || "something happened";
}

/** A read receipt for the newest notified event of every room listed. */
async function markAllRead() {
  const newest = new Map();
  for (const n of listed) {
    if (!n.read && n.event && n.event.event_id && !newest.has(n.room_id)) newest.set(n.room_id, n.event.event_id);
  }
  await Promise.all(
    [...newest].map(([room, event]) =>
      desk.call("POST", `/_matrix/client/v3/rooms/${enc(room)}/receipt/m.read/${enc(event)}`, {}),
    ),
  );
  await loadList();
}

/** The newest notification as a system notification (background only). */
async function announceNewest() {
  if (!("Notification" in window) || Notification.permission !== "granted") return;
  try {
    const answer = await desk.call("GET", "/_matrix/client/v3/notifications?limit=1");
    const n = (answer.notifications || [])[0];
    if (!n || n.read) return;
    const event = n.event || {};
    const body = (event.content && typeof event.content.body === "string" && event.content.body) || describe(event);
    const shown = new Notification(desk.roomName(n.room_id), { body: `${event.sender}: ${body}`.slice(0, 200), tag: n.room_id });
    shown.onclick = () => {
      window.focus();
      desk.openRoom(n.room_id);
    };
  } catch {
    // The bell still shows the count.
  }
}

/** Marks a room read up to `eventId` (the chat with the AI, once seen). */
export async function markRead(room, eventId) {
  if (!desk || !(unread[room] > 0)) return;
  try {
    await desk.call("POST", `/_matrix/client/v3/rooms/${enc(room)}/receipt/m.read/${enc(eventId)}`, {});
  } catch {
    // The count stays until the next receipt.
  }
}
