// The person's session, shared by the desktop and the sign-in page of app
// links: the access token lives in this origin's localStorage and nowhere
// else. It is sent only in the Authorization header, never in an address.
// App pages run sandboxed in opaque origins, so they cannot read it.

const KEY = "matrixos.session";

export function loadSession() {
  try {
    const s = JSON.parse(localStorage.getItem(KEY) || "null");
    if (s && typeof s.access_token === "string" && typeof s.user_id === "string") return s;
  } catch {
    // A damaged entry is no session.
  }
  return null;
}

export function saveSession(session) {
  localStorage.setItem(KEY, JSON.stringify(session));
}

export function clearSession() {
  localStorage.removeItem(KEY);
}

export class ApiError extends Error {
  constructor(status, body) {
    super((body && body.error) || `HTTP ${status}`);
    this.status = status;
    this.errcode = body && body.errcode;
  }
}

/** Calls the server with the session's token in the Authorization header. */
export async function api(session, method, path, body, { signal } = {}) {
  const headers = { Accept: "application/json" };
  if (session) headers.Authorization = `Bearer ${session.access_token}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    signal,
    cache: "no-store",
    credentials: "omit",
    referrerPolicy: "no-referrer",
  });
  const text = await response.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : {};
  } catch {
    data = null;
  }
  if (!response.ok) throw new ApiError(response.status, data);
  return data;
}

/** `m.login.password` at the standard client API. */
export async function login(user, password) {
  const answer = await api(null, "POST", "/_matrix/client/v3/login", {
    type: "m.login.password",
    identifier: { type: "m.id.user", user },
    password,
    initial_device_display_name: "Matrix OS desktop",
  });
  const session = {
    user_id: answer.user_id,
    access_token: answer.access_token,
    device_id: answer.device_id,
  };
  saveSession(session);
  return session;
}

export async function logout(session) {
  try {
    await api(session, "POST", "/_matrix/client/v3/logout", {});
  } catch {
    // Signed out here whatever the server says.
  }
  clearSession();
}

/** Wires a sign-in form (#login-user, #login-password, #login-error). */
export function bindLoginForm(form, onSignedIn) {
  const user = form.querySelector("#login-user");
  const password = form.querySelector("#login-password");
  const error = form.querySelector("#login-error");
  const button = form.querySelector("button[type=submit]");
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    error.textContent = "";
    if (!user.value.trim() || !password.value) {
      error.textContent = "Enter your username and password.";
      (user.value.trim() ? password : user).focus();
      return;
    }
    button.disabled = true;
    const label = button.textContent;
    button.textContent = "Signing in…";
    try {
      const session = await login(user.value.trim(), password.value);
      password.value = "";
      await onSignedIn(session);
    } catch (e) {
      error.textContent =
        e instanceof ApiError && e.errcode === "M_FORBIDDEN"
          ? "Wrong username or password."
          : e instanceof ApiError && e.status === 429
            ? "Too many attempts. Wait a moment and try again."
            : `Could not sign in: ${e.message}`;
      password.focus();
    } finally {
      button.disabled = false;
      button.textContent = label;
    }
  });
}

/** The theme the person picked ("light", "dark"), or the system's. */
export function applyTheme() {
  const theme = localStorage.getItem("matrixos.theme");
  if (theme === "light" || theme === "dark") document.documentElement.dataset.theme = theme;
  else delete document.documentElement.dataset.theme;
  return theme || "auto";
}
