// The page a person's browser gets for an app link it opened without a
// token (served at the link's own address): sign in, then open the app
// with its capability. The access token stays in this origin's storage and
// in Authorization headers; the address only ever holds the capability,
// and location.replace leaves no entry behind in the history.

import { ApiError, api, applyTheme, bindLoginForm, clearSession, loadSession, logout } from "./session.js";

applyTheme();

const $ = (id) => document.getElementById(id);
const parts = location.pathname.split("/");
// /_matrixos/apps/<user>/<slug>/...
const owner = decodeURIComponent(parts[3] || "");
const slug = decodeURIComponent(parts[4] || "");

function show(id) {
  for (const section of ["signin", "refusal", "missing"]) $(section).hidden = section !== id;
}

async function open(session) {
  $("status").textContent = "Opening…";
  try {
    const path = `/_matrixos/v1/apps/${encodeURIComponent(owner)}/${encodeURIComponent(slug)}/open`;
    const answer = await api(session, "GET", path);
    const rest = parts.slice(5).join("/");
    const target = new URL(answer.url, location.origin);
    if (rest) target.pathname += rest;
    location.replace(target.pathname + target.search);
  } catch (e) {
    $("status").textContent = "";
    if (e instanceof ApiError && (e.errcode === "M_UNKNOWN_TOKEN" || e.errcode === "M_MISSING_TOKEN")) {
      clearSession();
      signIn();
    } else if (e instanceof ApiError && e.errcode === "M_FORBIDDEN") {
      $("owner-name").textContent = owner;
      $("me-name").textContent = session.user_id;
      document.title = "Not yours · Matrix OS";
      show("refusal");
      $("switch-user").focus();
    } else if (e instanceof ApiError && e.status === 404) {
      document.title = "Nothing here · Matrix OS";
      show("missing");
    } else {
      $("status").textContent = `Could not open the app: ${e.message}`;
    }
  }
}

function signIn() {
  $("app-name").textContent = slug || "an app";
  $("login-user").value = owner;
  show("signin");
  $("status").textContent = "";
  $(owner ? "login-password" : "login-user").focus();
}

bindLoginForm($("login-form"), open);
$("switch-user").addEventListener("click", async () => {
  const current = loadSession();
  if (current) await logout(current);
  signIn();
});

const session = loadSession();
if (session) open(session);
else signIn();
