// The web desktop and app links in a real headless Chromium (Debian's
// `chromium` package, driven by playwright-core). Run by
// tests/suite/web_desktop.rs, which starts the server with a scripted LLM,
// registers alice and bob (password $PASSWORD), writes alice's apps
// `counter` and `probe` and bob's `diary`, and passes:
//   MATRIX_BASE, PASSWORD, SCREENSHOTS (a directory), COST_PER_REQUEST

import assert from "node:assert/strict";
import path from "node:path";
import { chromium } from "playwright-core";

const env = (name) => {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set`);
  return value;
};
const base = env("MATRIX_BASE");
const password = env("PASSWORD");
const shots = env("SCREENSHOTS");
const costPerRequest = Number(env("COST_PER_REQUEST"));

setTimeout(() => {
  console.error("FAILED: timed out");
  process.exit(1);
}, 220_000).unref();

const ok = (what) => console.log(`ok: ${what}`);

/** Waits until `check` returns something truthy (or throws its last error). */
async function eventually(what, check) {
  let last;
  for (let i = 0; i < 100; i++) {
    try {
      const value = await check();
      if (value) return value;
    } catch (e) {
      last = e;
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`${what}: ${last ? last.message : "never happened"}`);
}

// launch() starts Chromium with a fresh temporary --user-data-dir of its
// own (it refuses one in `args`: that is launchPersistentContext's job),
// removed when the browser closes.
const browser = await chromium.launch({
  executablePath: "/usr/bin/chromium",
  args: [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
  ],
});

/** A fresh browser context (its own storage) and page, recording every URL. */
async function freshPage(options = {}) {
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 }, ...options });
  const page = await context.newPage();
  const urls = [];
  const tokens = [];
  page.on("request", (request) => urls.push(request.url()));
  page.on("framenavigated", (frame) => urls.push(frame.url()));
  // The login answer is read before the page gets it: reading it after
  // the page has navigated on can find its body already gone.
  await page.route("**/_matrix/client/v3/login", async (route) => {
    const response = await route.fetch();
    if (route.request().method() === "POST") {
      try {
        const body = await response.json();
        if (body.access_token) tokens.push(body.access_token);
      } catch {
        // Not JSON: no token.
      }
    }
    await route.fulfill({ response });
  });
  page.on("pageerror", (error) => console.error(`page error: ${error.message}`));
  page.on("console", (message) => {
    if (["warning", "error"].includes(message.type())) console.error(`page ${message.type()}: ${message.text()}`);
  });
  return { context, page, urls, tokens };
}

async function history(page) {
  const cdp = await page.context().newCDPSession(page);
  const { entries } = await cdp.send("Page.getNavigationHistory");
  await cdp.detach();
  return entries.map((e) => e.url);
}

function assertNoToken(token, urls, where) {
  assert.ok(token && token.length > 10, `${where}: a token was issued`);
  for (const url of urls) {
    assert.ok(!url.includes(token), `${where}: the access token is in ${url}`);
    assert.ok(!url.includes(encodeURIComponent(token)), `${where}: the access token is in ${url}`);
    assert.ok(!/[?&]access_token=/.test(url), `${where}: access_token parameter in ${url}`);
  }
}

async function signIn(page, user) {
  await page.fill("#login-user", user);
  await page.fill("#login-password", password);
  await page.press("#login-password", "Enter");
}

try {
  // ------------------------------------------------ an app link, signed out
  {
    const { context, page, urls, tokens } = await freshPage();
    const link = `${base}/_matrixos/apps/alice/counter/`;
    const response = await page.goto(link);
    assert.equal(response.status(), 401, "the link page answers 401");
    assert.match(response.headers()["content-type"], /text\/html/);
    assert.match(response.headers()["content-security-policy"], /default-src 'none'/);
    await page.waitForSelector("#signin:not([hidden])");
    assert.equal(await page.inputValue("#login-user"), "alice", "the owner's name is filled in");
    assert.match(await page.textContent("#app-name"), /counter/);
    await page.screenshot({ path: path.join(shots, "link-sign-in.png") });
    await page.fill("#login-password", password);
    await page.click("#login-form button[type=submit]");
    await page.waitForURL(/\/_matrixos\/apps\/alice\/counter\/\?app_token=[0-9a-f]+$/);
    await page.waitForSelector("#count");
    await page.waitForFunction(() => document.getElementById("count").textContent === "0");
    await page.click("#count");
    await page.waitForFunction(() => document.getElementById("count").textContent === "1");
    ok("app link signs in");
    const token = tokens[0];
    const entries = await history(page);
    assertNoToken(token, [...urls, page.url(), ...entries], "app link");
    assert.ok(entries.every((u) => !u.includes("access_token")), `history: ${entries}`);
    ok("no token in any address");
    // The counter's click was saved with the capability.
    await eventually("the count is saved", async () => {
      const count = await fetch(`${base}/_matrixos/app-data/alice/counter/count`, {
        headers: { Authorization: `Bearer ${token}` },
      });
      return (await count.text()) === "1\n";
    });
    // Opened again from the same browser: straight to the app, no sign-in.
    await page.goto(link);
    await page.waitForURL(/app_token=/);
    await page.waitForSelector("#count");
    await context.close();
  }

  // ------------------------------------------------ someone else's link
  let bobToken;
  {
    const { context, page, tokens, urls } = await freshPage();
    await page.goto(`${base}/_matrixos/apps/alice/counter/`);
    await page.waitForSelector("#signin:not([hidden])");
    await page.fill("#login-user", "bob");
    await page.fill("#login-password", password);
    await page.click("#login-form button[type=submit]");
    await page.waitForSelector("#refusal:not([hidden])");
    assert.match(await page.textContent("#refusal h1"), /not yours/);
    assert.match(page.url(), /\/_matrixos\/apps\/alice\/counter\/$/);
    bobToken = tokens[0];
    assertNoToken(bobToken, [...urls, ...(await history(page))], "refusal");
    await page.screenshot({ path: path.join(shots, "link-refusal.png") });
    await context.close();
    // A browser that brings bob's token in the address gets a page, too.
    const page2 = await fetch(`${base}/_matrixos/apps/alice/counter/?access_token=${bobToken}`, {
      headers: { Accept: "text/html,application/xhtml+xml" },
      redirect: "manual",
    });
    assert.equal(page2.status, 403);
    assert.match(page2.headers.get("content-type"), /text\/html/);
    assert.match(page2.headers.get("content-security-policy"), /frame-ancestors 'none'/);
    assert.match(await page2.text(), /This link is not yours/);
    ok("refusal");
  }

  // ------------------------------------------------ API clients keep JSON
  {
    const none = await fetch(`${base}/_matrixos/apps/alice/counter/`, { headers: { Accept: "application/json" } });
    assert.equal(none.status, 401);
    assert.equal((await none.json()).errcode, "M_MISSING_TOKEN");
    const other = await fetch(`${base}/_matrixos/apps/alice/counter/`, {
      headers: { Accept: "text/html", Authorization: `Bearer ${bobToken}` },
    });
    assert.equal(other.status, 403);
    assert.equal((await other.json()).errcode, "M_FORBIDDEN");
    const open = await fetch(`${base}/_matrixos/v1/apps/alice/counter/open`, {
      headers: { Authorization: `Bearer ${bobToken}` },
    });
    assert.equal(open.status, 403);
    assert.equal((await open.json()).errcode, "M_FORBIDDEN");
    const list = await (await fetch(`${base}/_matrixos/v1/apps`, { headers: { Authorization: `Bearer ${bobToken}` } })).json();
    assert.deepEqual(list.apps.map((a) => a.slug), ["diary"], "bob sees only his apps");
    ok("api clients keep json");
  }

  // ------------------------------------------------ the desktop
  let aliceToken;
  {
    const { context, page, urls, tokens } = await freshPage();
    const response = await page.goto(`${base}/`);
    const csp = response.headers()["content-security-policy"];
    assert.match(csp, /script-src 'self'/);
    assert.ok(!csp.includes("unsafe-inline"), "no inline scripts on the desktop");
    await page.waitForSelector("#login-view:not([hidden])");
    await page.screenshot({ path: path.join(shots, "desktop-sign-in.png") });
    await signIn(page, "alice");
    await page.waitForSelector("#desktop-view:not([hidden])");
    aliceToken = tokens[0];
    await page.waitForSelector('#dock-apps .dock-item[data-slug="counter"]');
    await page.waitForSelector('#app-grid .app-tile[data-slug="probe"]');
    assert.equal(await page.textContent("#me"), "@alice:localhost");
    ok("desktop lists apps");

    // Notifications: bob's message in a room of theirs shows on the bell
    // and in its panel; marking it read clears the bell.
    await page.waitForSelector("#notify-count:not([hidden])");
    await page.click("#notify-toggle");
    const dinner = page.locator("#notify-list li.unread", { hasText: "Dinner at 8?" });
    await dinner.waitFor();
    assert.match(await dinner.textContent(), /Dinner plans/);
    assert.match(await dinner.textContent(), /@bob:localhost/);
    await page.screenshot({ path: path.join(shots, "desktop-notifications.png") });
    await page.click("#notify-read");
    // Read notifications leave the list (the server lists unread ones).
    await page.waitForSelector("#notify-empty:not([hidden])");
    assert.equal(await page.locator("#notify-list li").count(), 0, "all read");
    await page.waitForSelector("#notify-count", { state: "hidden" });
    await page.keyboard.press("Escape");
    assert.ok(await page.isHidden("#notify-panel"));
    ok("notifications");

    // Chat with the AI: the answer lands in the place held for it.
    await page.waitForFunction(() => document.getElementById("chat-state").textContent === "Online");
    // Watches the chat: where my message and the held place are when the
    // place appears, and where they are once the answer fills it.
    await page.evaluate(() => {
      const list = document.getElementById("messages");
      const rect = (e) => e && e.getBoundingClientRect().toJSON();
      window.__shift = {};
      new MutationObserver(() => {
        const held = list.querySelector(".msg.ai.pending");
        const mine = [...list.querySelectorAll(".msg.me")].pop();
        if (held && !window.__shift.held) {
          window.__shift.held = rect(held);
          window.__shift.mineBefore = rect(mine);
          window.__shift.element = held;
        }
        const filled = window.__shift.element;
        if (filled && !filled.classList.contains("pending") && !window.__shift.answer) {
          window.__shift.answer = rect(filled);
          window.__shift.mineAfter = rect(mine);
        }
      }).observe(list, { childList: true, subtree: true, attributes: true, characterData: true });
    });
    await page.fill("#composer-input", "Build me a notes app");
    await page.press("#composer-input", "Enter");
    await page.waitForSelector(".msg.ai:not(.pending) .bubble >> text=Your notes app is ready", { timeout: 60_000 });
    ok("chat answer");
    const shift = await page.evaluate(() => {
      const { held, answer, mineBefore, mineAfter } = window.__shift;
      return { held, answer, mineBefore, mineAfter };
    });
    assert.ok(shift.held && shift.answer, `the answer filled the held place: ${JSON.stringify(shift)}`);
    assert.ok(Math.abs(shift.mineBefore.y - shift.mineAfter.y) < 1, `my message stayed put: ${JSON.stringify(shift)}`);
    assert.ok(Math.abs(shift.held.y - shift.answer.y) < 1, `the answer is where its place was: ${JSON.stringify(shift)}`);
    assert.ok(shift.answer.height <= shift.held.height + 1, `the answer fits its place: ${JSON.stringify(shift)}`);
    ok("no layout shift");

    // The link in the answer opens the new app in a window, with its data.
    await page.click(".msg.ai a[href$='/_matrixos/apps/alice/notes/']");
    const notesFrame = page.frameLocator('.window[data-slug="notes"] iframe');
    await notesFrame.locator("#text").fill("Written in the desktop");
    await notesFrame.locator("#status", { hasText: "Saved" }).waitFor();
    const sandbox = await page.getAttribute('.window[data-slug="notes"] iframe', "sandbox");
    assert.equal(sandbox, "allow-scripts allow-forms");
    await page.waitForSelector('#dock-apps .dock-item[data-slug="notes"]');
    await page.click('#dock-apps .dock-item[data-slug="counter"]');
    await page.frameLocator('.window[data-slug="counter"] iframe').locator("#count", { hasText: "1" }).waitFor();
    await page.locator('.window[data-slug="counter"] .window-bar button[aria-label^="Close"]').click();
    await page.screenshot({ path: path.join(shots, "desktop.png") });
    ok("app window data");

    // The probe app tries to reach what it must not.
    await page.click('#dock-apps .dock-item[data-slug="probe"]');
    const probe = page.frameLocator('.window[data-slug="probe"] iframe');
    await probe.locator("#out", { hasText: "own_data" }).waitFor();
    const report = JSON.parse(await probe.locator("#out").textContent());
    for (const attempt of ["storage", "parent", "top_storage", "cookie", "other_app", "other_user", "client_api"]) {
      assert.match(report[attempt], /^blocked: /, `${attempt} must fail: ${JSON.stringify(report)}`);
    }
    assert.equal(report.own_data, 'read: {"ok":1}', "the app's own data works");
    ok("sandbox");

    // Windows move: dragged by the title bar one floats where it is put;
    // Alt+arrows move it, Alt+Shift+arrows resize it; a double click tiles.
    {
      await page.click('#dock-apps .dock-item[data-slug="notes"]');
      const win = page.locator('.window[data-slug="notes"]');
      const before = await win.boundingBox();
      const title = await win.locator(".window-bar .title").boundingBox();
      const [x, y] = [title.x + 20, title.y + title.height / 2];
      await page.mouse.move(x, y);
      await page.mouse.down();
      await page.mouse.move(x + 60, y + 40, { steps: 6 });
      await page.mouse.up();
      assert.match(await win.getAttribute("class"), /floating/);
      const moved = await win.boundingBox();
      const near = (a, b) => Math.abs(a - b) <= 2;
      assert.ok(near(moved.x, before.x + 60) && near(moved.y, before.y + 40), `dragged: ${JSON.stringify({ before, moved })}`);
      assert.ok(near(moved.width, before.width) && near(moved.height, before.height), "the same size");
      await win.locator('.window-bar button[aria-label^="Maximise"]').focus();
      await page.keyboard.press("Alt+ArrowRight");
      await page.keyboard.press("Alt+Shift+ArrowDown");
      const nudged = await win.boundingBox();
      assert.ok(near(nudged.x, moved.x + 24) && near(nudged.height, moved.height + 24), `keyboard: ${JSON.stringify({ moved, nudged })}`);
      await page.screenshot({ path: path.join(shots, "desktop-windows.png") });
      await win.locator(".window-bar .title").dblclick();
      assert.doesNotMatch(await win.getAttribute("class"), /floating/);
      ok("windows move");
    }
    await page.locator('.window[data-slug="probe"] .window-bar button[aria-label^="Close"]').click();

    // The dashboard shows the ledger's figures.
    await page.click('.dock-item[data-view="usage"]');
    await page.waitForSelector('[data-testid="today"] [data-field="runs"][data-value]');
    const ledger = await (await fetch(`${base}/_matrixos/v1/usage?days=30`, { headers: { Authorization: `Bearer ${aliceToken}` } })).json();
    const today = new Date().toISOString().slice(0, 10);
    const day = ledger.days.find((d) => d.date === today);
    assert.ok(day && day.runs === 1, `one run today: ${JSON.stringify(ledger.days)}`);
    const shown = async (selector) => Number(await page.getAttribute(selector, "data-value"));
    for (const card of ["today", "week", "month"]) {
      assert.equal(await shown(`[data-testid="${card}"] [data-field="runs"]`), day.runs, `${card} runs`);
      assert.equal(await shown(`[data-testid="${card}"] [data-field="tokens"]`), day.tokens_in + day.tokens_out, `${card} tokens`);
      assert.equal(await shown(`[data-testid="${card}"] [data-field="cost"]`), day.cost_usd, `${card} cost`);
    }
    assert.ok(Math.abs(day.cost_usd - 2 * costPerRequest) < 1e-12, `two model calls' cost: ${day.cost_usd}`);
    assert.equal(await page.textContent('[data-testid="today"] [data-field="cost"]'), `$${day.cost_usd.toFixed(4)}`);
    const room = ledger.per_room[0];
    const roomRow = `[data-testid="per-room"] tr[data-key="${room.room}"]`;
    assert.equal(await shown(`${roomRow} [data-field="cost"]`), room.cost_usd);
    assert.equal(await shown(`${roomRow} [data-field="runs"]`), room.runs);
    assert.match(await page.textContent(`${roomRow} td`), /Chat with alice_ai/);
    const model = ledger.per_model[0];
    assert.equal(model.model, "scripted-model");
    const modelRow = `[data-testid="per-model"] tr[data-key="${model.model}"]`;
    assert.equal(await shown(`${modelRow} [data-field="tokens"]`), model.tokens_in + model.tokens_out);
    assert.equal(await shown(`${modelRow} [data-field="cost"]`), model.cost_usd);
    assert.equal(await page.locator(`#usage-chart rect.bar.today`).getAttribute("data-value"), String(day.cost_usd));
    assert.match(await page.textContent('[data-testid="runs"] tbody'), /Build me a notes app[\s\S]*write_app/);
    ok("dashboard equals ledger");
    await page.screenshot({ path: path.join(shots, "desktop-usage.png") });
    await page.emulateMedia({ colorScheme: "dark" });
    await page.screenshot({ path: path.join(shots, "desktop-usage-dark.png") });
    await page.click('.dock-item[data-view="home"]');
    await page.screenshot({ path: path.join(shots, "desktop-dark.png") });
    await page.emulateMedia({ colorScheme: "light" });

    // Files: edit the SOUL, see the next answer use it, restore it from
    // its history; a broken privacy.json is refused before saving.
    await page.click('.dock-item[data-view="files"]');
    await page.click('#settings-list button[data-path="system/soul.md"]');
    await page.waitForSelector("#file-editor:not([hidden])");
    const soul = await page.inputValue("#file-content");
    assert.ok(soul.length > 10 && !soul.includes("pirate"), `the SOUL: ${soul}`);
    await page.fill("#file-content", `${soul}\nAlways answer like a pirate.\n`);
    await page.click("#file-save");
    await page.waitForSelector("#file-status >> text=Saved");
    await page.waitForSelector('#file-history li:first-child >> text=Edit system/soul.md in the desktop');
    await page.fill("#composer-input", "Hello again");
    await page.press("#composer-input", "Enter");
    // The model holds the second half of this answer: the first shows in
    // the answer's place as it is written, before anything is posted.
    await page.waitForSelector(".msg.ai.pending.streaming .bubble >> text=Arr, hel", { timeout: 60_000 });
    assert.equal(await page.textContent(".msg.ai.pending.streaming .bubble"), "Arr, hel");
    assert.equal(await page.locator(".msg.ai:not(.pending) .bubble >> text=Arr, hel").count(), 0);
    await page.screenshot({ path: path.join(shots, "desktop-streaming.png") });
    ok("answer streams");
    const released = await fetch(`${process.env.LLM_BASE}/release`, { method: "POST" });
    assert.equal(released.status, 204);
    await page.waitForSelector(".msg.ai:not(.pending) .bubble >> text=Arr, hello again!", { timeout: 60_000 });
    await page.screenshot({ path: path.join(shots, "desktop-files.png") });
    const restore = page.locator("#file-history li").nth(1).locator("button.restore");
    await restore.click();
    await page.waitForSelector("#file-status >> text=Restored from");
    assert.equal(await page.inputValue("#file-content"), soul, "the SOUL is back as it was");
    await page.waitForSelector('#file-history li:first-child >> text=Restore system/soul.md from');
    const served = await (await fetch(`${base}/_matrixos/v1/files/content?path=system/soul.md`, { headers: { Authorization: `Bearer ${aliceToken}` } })).json();
    assert.equal(served.content, soul);
    await page.click('#settings-list button[data-path="system/privacy.json"]');
    await page.waitForFunction(() => document.getElementById("file-path").textContent === "system/privacy.json");
    const privacy = await page.inputValue("#file-content");
    await page.fill("#file-content", "{ broken");
    await page.click("#file-save");
    await page.waitForSelector("#file-error >> text=not JSON");
    const kept = await (await fetch(`${base}/_matrixos/v1/files/content?path=system/privacy.json`, { headers: { Authorization: `Bearer ${aliceToken}` } })).json();
    assert.equal(kept.content, privacy, "the invalid policy was not saved");
    const escape = await fetch(`${base}/_matrixos/v1/files/content?path=../bob/system/soul.md`, { headers: { Authorization: `Bearer ${aliceToken}` } });
    assert.equal(escape.status, 400, "no path out of the home");
    const readonly = await fetch(`${base}/_matrixos/v1/files/content?path=README.md`, {
      method: "PUT",
      headers: { Authorization: `Bearer ${aliceToken}`, "Content-Type": "application/json" },
      body: JSON.stringify({ content: "x" }),
    });
    assert.equal(readonly.status, 403, "only the settings files are edited here");
    ok("files");

    // Keyboard: the skip link comes first, focus is visible, the dock
    // moves with the arrow keys, Escape closes a window.
    await page.reload();
    await page.waitForSelector('#dock-apps .dock-item[data-slug="counter"]');
    await page.keyboard.press("Tab");
    assert.equal(await page.evaluate(() => document.activeElement.className), "skip");
    await page.focus('.dock-item[data-view="home"]');
    await page.keyboard.press("ArrowDown");
    assert.equal(await page.evaluate(() => document.activeElement.dataset.view), "chat");
    await page.keyboard.press("Tab");
    await page.keyboard.press("Shift+Tab");
    const outline = await page.evaluate(() => getComputedStyle(document.activeElement).outlineStyle);
    assert.notEqual(outline, "none", "the focused control shows it");
    await page.focus('#dock-apps .dock-item[data-slug="counter"]');
    await page.keyboard.press("Enter");
    await page.waitForSelector('.window[data-slug="counter"]');
    await page.keyboard.press("Escape");
    await page.waitForSelector('.window[data-slug="counter"]', { state: "detached" });
    ok("keyboard");

    // PWA: the manifest, and a service worker that keeps only the shell.
    const manifest = await (await fetch(`${base}/_matrixos/desktop/manifest.webmanifest`)).json();
    assert.equal(manifest.start_url, "/");
    await page.evaluate(() => navigator.serviceWorker.ready.then(() => true));
    await page.reload();
    await page.waitForSelector('#dock-apps .dock-item[data-slug="counter"]');
    const cached = await page.evaluate(async () => {
      const out = [];
      for (const name of await caches.keys()) {
        for (const request of await (await caches.open(name)).keys()) out.push(new URL(request.url).pathname);
      }
      return out;
    });
    assert.ok(cached.includes("/") && cached.includes("/_matrixos/desktop/desktop.js"), `shell cached: ${cached}`);
    assert.ok(cached.every((p) => p === "/" || p.startsWith("/_matrixos/desktop/")), `only the shell: ${cached}`);
    ok("service worker");
    assertNoToken(aliceToken, [...urls, ...(await history(page))], "desktop");
    await context.close();
  }

  // ------------------------------------------------ the phone
  {
    const { context, page } = await freshPage({
      viewport: { width: 390, height: 844 },
      deviceScaleFactor: 2,
      isMobile: true,
      hasTouch: true,
    });
    await page.goto(`${base}/`);
    await signIn(page, "alice");
    await page.waitForSelector('#app-grid .app-tile[data-slug="notes"]');
    const width = await page.evaluate(() => document.documentElement.scrollWidth);
    assert.ok(width <= 390, `no sideways scrolling (${width}px)`);
    const dock = await page.locator("#dock").boundingBox();
    assert.ok(dock.y + dock.height >= 843 && dock.height <= 90, `the dock is a bottom bar: ${JSON.stringify(dock)}`);
    const tile = await page.locator('#app-grid .app-tile[data-slug="notes"]').boundingBox();
    assert.ok(tile.height >= 44 && tile.width >= 44, "touch-sized tiles");
    await page.screenshot({ path: path.join(shots, "phone.png") });
    await page.tap('.dock-item[data-view="chat"]');
    await page.waitForSelector("#chat-panel .msg.ai >> text=Your notes app is ready");
    assert.ok(await page.isHidden("#workspace"), "one view at a time");
    const composer = await page.locator("#composer").boundingBox();
    assert.ok(composer.y + composer.height <= dock.y + 1, "the composer sits above the dock");
    await page.screenshot({ path: path.join(shots, "phone-chat.png") });
    await page.tap('#dock-apps .dock-item[data-slug="notes"]');
    const frame = await page.locator('.window[data-slug="notes"]').boundingBox();
    assert.ok(frame.width >= 350 && frame.height >= 600, `the window fills the phone: ${JSON.stringify(frame)}`);
    await page.frameLocator('.window[data-slug="notes"] iframe').locator("#text").waitFor();
    const notes = page.frames().find((f) => f.url().includes("/_matrixos/apps/alice/notes/"));
    await notes.waitForFunction(() => document.getElementById("text").value === "Written in the desktop");
    await page.screenshot({ path: path.join(shots, "phone-app.png") });
    await page.tap('.dock-item[data-view="usage"]');
    await page.waitForSelector('[data-testid="today"] [data-field="runs"][data-value]');
    const usageWidth = await page.evaluate(() => document.documentElement.scrollWidth);
    assert.ok(usageWidth <= 390, `the dashboard fits (${usageWidth}px)`);
    await page.screenshot({ path: path.join(shots, "phone-usage.png") });
    ok("phone");
    await context.close();
  }

  console.log("PASSED");
} catch (error) {
  console.error(`FAILED: ${error.stack || error}`);
  process.exitCode = 1;
} finally {
  await browser.close();
}
