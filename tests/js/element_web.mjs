// matrix-js-sdk, the client stack inside Element Web, against a running
// Matrix OS: threads (replies, the thread list, the summary bundled in
// the root), edits (the latest one bundled and applied), search (results,
// context, highlights, paging back), spaces (the hierarchy), link
// previews, peeking into a world-readable room, and a guest.
//
// Run by tests/suite/element_web.rs, which starts the server, registers
// the users and passes them in the environment:
//   MATRIX_BASE, ALICE_ID, ALICE_TOKEN, BOB_ID, BOB_TOKEN

// matrix-js-sdk 43 asks for Node 22; on Node 20 it needs this one helper.
if (!Promise.withResolvers) {
    Promise.withResolvers = function () {
        let resolve;
        let reject;
        const promise = new Promise((res, rej) => {
            resolve = res;
            reject = rej;
        });
        return { promise, resolve, reject };
    };
}

import assert from "node:assert/strict";
import * as sdk from "matrix-js-sdk";
import { logger } from "matrix-js-sdk/lib/logger.js";
import { RoomHierarchy } from "matrix-js-sdk/lib/room-hierarchy.js";

logger.setLevel("warn");

const env = (name) => {
    const value = process.env[name];
    if (!value) throw new Error(`${name} is not set`);
    return value;
};
const baseUrl = env("MATRIX_BASE");

// Nothing here may hang the test run.
setTimeout(() => {
    console.error("FAILED: timed out");
    process.exit(1);
}, 150_000).unref();

async function started(userId, accessToken) {
    const client = sdk.createClient({ baseUrl, userId, accessToken, timelineSupport: true });
    const ready = new Promise((resolve, reject) => {
        client.on(sdk.ClientEvent.Sync, (state) => {
            if (state === "PREPARED") resolve();
            if (state === "ERROR") reject(new Error(`${userId}: sync failed`));
        });
    });
    await client.startClient({ initialSyncLimit: 20, threadSupport: true });
    await ready;
    return client;
}

/** Waits until `check` returns something truthy (or throws its last error). */
async function eventually(what, check) {
    let last;
    for (let i = 0; i < 200; i++) {
        try {
            const value = await check();
            if (value) return value;
        } catch (e) {
            last = e;
        }
        await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error(`never happened: ${what}${last ? ` (${last.message})` : ""}`);
}

const text = (body) => ({ msgtype: "m.text", body });

async function threads(alice, bob) {
    const { room_id: roomId } = await alice.createRoom({ preset: "public_chat", name: "Threads" });
    await bob.joinRoom(roomId);
    const { event_id: rootId } = await alice.sendMessage(roomId, text("thread root"));
    // Bob opens the thread, as Element Web's thread panel does before he can
    // reply: matrix-js-sdk keeps a reply's local echo in its thread, and
    // throws if the reply's echo comes back first for a thread it never set up.
    const bobRoom = await eventually("bob has the room", () => bob.getRoom(roomId));
    const rootSeen = await eventually("bob has the root", () => bobRoom.findEventById(rootId));
    bobRoom.createThread(rootId, rootSeen, [], true);
    await bob.sendMessage(roomId, rootId, {
        ...text("first reply"),
        "m.relates_to": { rel_type: "m.thread", event_id: rootId, is_falling_back: true,
            "m.in_reply_to": { event_id: rootId } },
    });
    await bob.sendMessage(roomId, rootId, {
        ...text("second reply"),
        "m.relates_to": { rel_type: "m.thread", event_id: rootId, is_falling_back: true,
            "m.in_reply_to": { event_id: rootId } },
    });

    // Alice's client puts the replies in the thread, not the main timeline.
    const room = await eventually("alice has the room", () => alice.getRoom(roomId));
    const thread = await eventually("the thread is known", () => {
        const t = room.getThread(rootId);
        return t && t.length === 2 && t;
    });
    await eventually("the thread's last reply", () =>
        thread.replyToEvent?.getContent().body === "second reply");
    const main = room.getLiveTimeline().getEvents().map((e) => e.getContent().body);
    assert.ok(main.includes("thread root"));
    assert.ok(!main.includes("first reply"), `replies stay in the thread: ${main}`);

    // The root as the server bundles it: the thread's summary.
    const root = await alice.fetchRoomEvent(roomId, rootId);
    const summary = root.unsigned["m.relations"]["m.thread"];
    assert.equal(summary.count, 2);
    assert.equal(summary.latest_event.content.body, "second reply");
    // Alice wrote the root: she took part (as Synapse counts it).
    assert.equal(summary.current_user_participated, true);

    // The thread list (/threads) as Element Web's thread panel loads it.
    const fresh = new sdk.Room(roomId, alice, alice.getUserId(), { timelineSupport: true });
    const sets = await fresh.createThreadsTimelineSets();
    assert.ok(sets, "thread list timelines");
    await fresh.fetchRoomThreads();
    const listed = sets[0].getLiveTimeline().getEvents().map((e) => e.getId());
    assert.deepEqual(listed, [rootId]);
    const participated = sets[1].getLiveTimeline().getEvents().map((e) => e.getId());
    assert.deepEqual(participated, [rootId], "alice wrote the root");
    console.log("ok: threads");
    return roomId;
}

async function edits(alice, bob, roomId) {
    const { event_id: original } = await alice.sendMessage(roomId, text("helo world"));
    const edit = (body) => ({
        ...text(`* ${body}`),
        "m.new_content": text(body),
        "m.relates_to": { rel_type: "m.replace", event_id: original },
    });
    await alice.sendMessage(roomId, edit("hello world"));
    const { event_id: latest } = await alice.sendMessage(roomId, edit("hello, world"));

    // Bob's client shows the latest edit in place of the original.
    const room = await eventually("bob has the room", () => bob.getRoom(roomId));
    const shown = await eventually("the edit is applied", () => {
        const event = room.findEventById(original);
        return event?.replacingEventId() === latest && event;
    });
    assert.equal(shown.getContent().body, "hello, world");
    // The server bundles the latest edit with the original.
    const fetched = await bob.fetchRoomEvent(roomId, original);
    assert.equal(fetched.unsigned["m.relations"]["m.replace"].event_id, latest);
    console.log("ok: edits");
}

async function search(alice, roomId) {
    for (let i = 0; i < 15; i++) {
        await alice.sendMessage(roomId, text(`haystack ${i} with a needle`));
    }
    await alice.sendMessage(roomId, text("only hay here"));
    const first = await alice.searchRoomEvents({ term: "needles" });
    assert.equal(first.count, 15);
    assert.equal(first.results.length, 10);
    const bodies = (r) => r.results.map((x) => x.context.getEvent().getContent().body);
    assert.equal(bodies(first)[0], "haystack 14 with a needle", "newest first");
    assert.ok(first.highlights.includes("needle"), `highlights: ${first.highlights}`);
    const around = first.results[0].context.getTimeline().map((e) => e.getContent().body);
    assert.ok(around.includes("haystack 13 with a needle"), `context: ${around}`);
    assert.ok(first.next_batch, "more to come");
    const all = await alice.backPaginateRoomEventsSearch(first);
    assert.equal(all.results.length, 15);
    assert.equal(bodies(all)[14], "haystack 0 with a needle");
    assert.ok(!all.next_batch, "no more");
    const filtered = await alice.searchRoomEvents({ term: "needle", filter: { rooms: ["!elsewhere:localhost"] } });
    assert.equal(filtered.results.length, 0);
    console.log("ok: search");
}

async function spaces(alice, bob) {
    const space = await alice.createRoom({
        preset: "public_chat", name: "Home space", creation_content: { type: "m.space" },
    });
    const child = async (name, order) => {
        const { room_id: id } = await alice.createRoom({ preset: "public_chat", name });
        await alice.sendStateEvent(space.room_id, "m.space.child", { via: ["localhost"], order }, id);
        return id;
    };
    const second = await child("Second", "b");
    const first = await child("First", "a");
    await bob.joinRoom(space.room_id);
    const hierarchy = await bob.getRoomHierarchy(space.room_id, 50);
    assert.deepEqual(hierarchy.rooms.map((r) => r.name), ["Home space", "First", "Second"]);
    assert.deepEqual(hierarchy.rooms.map((r) => r.room_id), [space.room_id, first, second]);
    assert.equal(hierarchy.rooms[0].room_type, "m.space");
    assert.equal(hierarchy.rooms[0].children_state.length, 2);

    // Element Web's space home: RoomHierarchy pages through it.
    const room = await eventually("bob has the space", () => bob.getRoom(space.room_id));
    const walker = new RoomHierarchy(room, 1);
    while (!walker.noSupport && walker.canLoadMore) {
        await walker.load();
    }
    assert.deepEqual(walker.rooms.map((r) => r.name), ["Home space", "First", "Second"]);
    console.log("ok: spaces");
}

// Element Web's link previews: the preview through the authenticated media
// API (the server advertises v1.11), its image downloaded with a token.
async function previews(alice) {
    const url = env("PREVIEW_URL");
    const preview = await alice.getUrlPreview(url, Date.now());
    assert.equal(preview["og:title"], "Cats & dogs");
    const mxc = preview["og:image"];
    assert.ok(mxc.startsWith("mxc://"), mxc);
    const http = alice.mxcUrlToHttp(mxc, undefined, undefined, undefined, false, true, true);
    assert.ok(http.includes("/_matrix/client/v1/media/download/"), http);
    const image = await fetch(http, { headers: { Authorization: `Bearer ${alice.getAccessToken()}` } });
    assert.equal(image.status, 200);
    assert.equal(image.headers.get("content-type"), "image/png");
    console.log("ok: previews");
}

// Element's preview of a world-readable room one has not joined:
// peekInRoom reads it with /rooms/{id}/initialSync, then polls /events.
async function peeking(alice, bob) {
    const { room_id: roomId } = await alice.createRoom({
        preset: "public_chat",
        name: "Open house",
        initial_state: [{ type: "m.room.history_visibility", state_key: "", content: { history_visibility: "world_readable" } }],
    });
    await alice.sendMessage(roomId, text("before the peek"));
    const room = await bob.peekInRoom(roomId);
    const bodies = () => room.getLiveTimeline().getEvents().map((e) => e.getContent().body);
    assert.ok(bodies().includes("before the peek"), JSON.stringify(bodies()));
    assert.equal(room.name, "Open house");
    await alice.sendMessage(roomId, text("while bob peeks"));
    await eventually("the new message reaches the peek", () => bodies().includes("while bob peeks"));
    bob.stopPeeking();
    console.log("ok: peeking");
}

// A guest, as Element Web makes one for someone without an account: it
// syncs, joins a room that lets guests in and talks there.
async function guests(alice) {
    const { room_id: roomId } = await alice.createRoom({
        preset: "public_chat",
        initial_state: [{ type: "m.room.guest_access", state_key: "", content: { guest_access: "can_join" } }],
    });
    const anon = sdk.createClient({ baseUrl });
    const creds = await anon.registerGuest({ body: { initial_device_display_name: "guest browser" } });
    const guest = sdk.createClient({
        baseUrl, userId: creds.user_id, accessToken: creds.access_token, deviceId: creds.device_id,
    });
    guest.setGuest(true);
    const ready = new Promise((resolve, reject) => {
        guest.on(sdk.ClientEvent.Sync, (state) => {
            if (state === "PREPARED") resolve();
            if (state === "ERROR") reject(new Error("guest sync failed"));
        });
    });
    await guest.startClient({ initialSyncLimit: 10 });
    await ready;
    assert.ok(guest.isGuest());
    await guest.joinRoom(roomId);
    await guest.sendMessage(roomId, text("hello as a guest"));
    const seen = await eventually("alice sees the guest", () => {
        const events = alice.getRoom(roomId)?.getLiveTimeline().getEvents() ?? [];
        return events.find((e) => e.getContent().body === "hello as a guest");
    });
    assert.equal(seen.getSender(), creds.user_id);
    await assert.rejects(guest.createRoom({}), (e) => e.errcode === "M_GUEST_ACCESS_FORBIDDEN");
    guest.stopClient();
    console.log("ok: guests");
}

const alice = await started(env("ALICE_ID"), env("ALICE_TOKEN"));
const bob = await started(env("BOB_ID"), env("BOB_TOKEN"));
try {
    const roomId = await threads(alice, bob);
    await edits(alice, bob, roomId);
    await search(alice, roomId);
    await spaces(alice, bob);
    await previews(alice);
    await peeking(alice, bob);
    await guests(alice);
    console.log("PASSED");
} catch (e) {
    console.error("FAILED:", e);
    process.exitCode = 1;
} finally {
    alice.stopClient();
    bob.stopClient();
}
process.exit(process.exitCode ?? 0);
