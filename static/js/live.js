// Live hints for agent pages. The server pushes small events ({"type", "ticket", "version"});
// the page re-fetches only the fragments it shows, so HTML is rendered on the server only.
// - Bursts are coalesced with a jittered debounce (150-400 ms per fragment), so 200 agents do not
//   hit the server in the same instant and one burst costs one refetch per fragment.
// - Fragments carry ETags: an unchanged fragment answers 304 and the DOM is left alone.
// - Events are hints: after a reconnect, when the tab becomes visible and once a minute the page
//   catches up from the server, so nothing is missed while a socket was down.
// Other modules talk to the socket through document events:
//   "oc:ws-send" {detail: message}  -> sent on the socket (dropped while offline)
//   "oc:live"    {detail: event}    <- every message from the server
//   "oc:refresh"                     -> catch up now (after a local change)

const script = document.currentScript || document.querySelector("script[data-websocket-url]");
const configured = script ? script.dataset.websocketUrl : "";
const statusEl = document.getElementById("live-status");
const PAGE = 50;

function socketUrl() {
  if (configured) return configured.replace(/\/$/, "") + "/ws/agent/";
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  return `${scheme}//${location.host}/ws/agent/`;
}

function setStatus(state) {
  if (!statusEl) return;
  statusEl.dataset.state = state;
  statusEl.textContent = state === "live" ? statusEl.dataset.labelLive : statusEl.dataset.labelOffline;
}

// --- fragments ------------------------------------------------------------------------------
const fragments = {
  list: () => document.querySelector("[data-live-list]"),
  views: () => document.querySelector("[data-live-views]"),
  timeline: () => document.querySelector("[data-live-ticket]"),
  board: () => document.querySelector("[data-live-board]"),
};

function fragmentUrl(name, el) {
  if (name === "list") {
    const rows = el.querySelectorAll("tr[data-ticket-id]").length;
    const pages = Math.max(1, Math.min(10, Math.ceil(rows / PAGE)));
    return el.dataset.liveList + (pages > 1 ? `&pages=${pages}` : "");
  }
  if (name === "views") return el.dataset.liveViews;
  if (name === "timeline") return el.dataset.liveUrl;
  return el.dataset.liveBoard;
}

const pending = new Map();
let staleWhileHidden = false;

function refresh(name) {
  if (pending.has(name)) return;
  const delay = 150 + Math.random() * 250;
  pending.set(name, setTimeout(async () => {
    pending.delete(name);
    const el = fragments[name]();
    if (!el) return;
    if (document.hidden) { staleWhileHidden = true; return; }
    try {
      // cache "no-cache": the browser revalidates with If-None-Match; a 304 leaves the DOM alone.
      const response = await fetch(fragmentUrl(name, el), {
        headers: { "HX-Request": "true" }, credentials: "same-origin", cache: "no-cache",
      });
      if (!response.ok) return;
      const html = await response.text();
      if (el.dataset.liveHtml === html) return;
      el.dataset.liveHtml = html;
      el.innerHTML = html;
      if (window.htmx) window.htmx.process(el);
      el.dispatchEvent(new CustomEvent("live:refreshed", { bubbles: true, detail: { name } }));
    } catch (err) { /* offline: the next hint or focus catches up */ }
  }, delay));
}

function catchUp() {
  for (const name of Object.keys(fragments)) if (fragments[name]()) refresh(name);
}

function onTicketEvent(event) {
  refresh("list");
  refresh("views");
  refresh("board");
  const timeline = fragments.timeline();
  if (timeline && String(event.ticket) === timeline.dataset.liveTicket) refresh("timeline");
}

// --- collision detection ("Anna is viewing", "Anna is typing a reply") ------------------------
const others = new Map(); // user id -> {name, state, at}
const VIEWING_TTL = 45000;
const TYPING_TTL = 6000;

function renderCollision() {
  const el = document.querySelector("[data-collision]");
  if (!el) return;
  const now = Date.now();
  const parts = [];
  for (const [id, who] of others) {
    if (who.state === "left" || now - who.seenAt > VIEWING_TTL) { others.delete(id); continue; }
    const typing = who.typingAt && now - who.typingAt < TYPING_TTL;
    const label = typing ? el.dataset.labelTyping : el.dataset.labelViewing;
    parts.push(label.replace("%(name)s", who.name));
  }
  el.textContent = parts.join(" · ");
  el.dataset.active = parts.length ? "true" : "false";
}

function currentTicket() {
  const pane = document.querySelector("[data-pane]");
  return pane ? Number(pane.dataset.ticket) : null;
}

function onCollision(data) {
  if (data.ticket !== currentTicket()) return;
  const known = others.get(data.user);
  const now = Date.now();
  if (data.state === "left") { others.delete(data.user); renderCollision(); return; }
  const who = known || { name: data.name, seenAt: now };
  who.name = data.name;
  who.seenAt = now;
  who.state = data.state;
  if (data.state === "typing") who.typingAt = now;
  others.set(data.user, who);
  // A newcomer does not know who was here before: say it once more.
  if (!known && data.state === "viewing") send({ type: "watch", ticket: data.ticket });
  renderCollision();
}
setInterval(renderCollision, 2000);

let watched = null;
function watchCurrent() {
  const ticket = currentTicket();
  if (ticket !== watched) { others.clear(); renderCollision(); }
  watched = ticket;
  send(ticket ? { type: "watch", ticket } : { type: "unwatch" });
}

// --- the socket ---------------------------------------------------------------------------------
let ws = null;
let attempt = 0;
let everConnected = false;

function send(message) {
  if (ws && ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify(message));
}

function connect() {
  ws = new WebSocket(socketUrl());
  ws.addEventListener("open", () => {
    attempt = 0;
    setStatus("live");
    send({ type: "hello" });
    watchCurrent();
    if (everConnected) catchUp();
    everConnected = true;
    document.body.dataset.live = "connected";
  });
  ws.addEventListener("message", (msg) => {
    let data;
    try { data = JSON.parse(msg.data); } catch { return; }
    if (!data) return;
    document.dispatchEvent(new CustomEvent("oc:live", { detail: data }));
    if (data.type === "collision") onCollision(data);
    else if (data.ticket) onTicketEvent(data);
  });
  ws.addEventListener("close", (ev) => {
    setStatus("offline");
    document.body.dataset.live = "disconnected";
    if (ev.code === 4401) { location.reload(); return; }  // signed out elsewhere
    attempt += 1;
    setTimeout(connect, Math.min(30000, 500 * 2 ** attempt) * (0.5 + Math.random()));
  });
}

document.addEventListener("oc:ws-send", (ev) => send(ev.detail));
document.addEventListener("oc:refresh", catchUp);
document.body.addEventListener("htmx:afterSettle", (ev) => {
  if (ev.detail && ev.detail.target && ev.detail.target.id === "pane") watchCurrent();
});
window.addEventListener("popstate", () => setTimeout(watchCurrent, 300));
setInterval(() => { send({ type: "ping" }); if (currentTicket()) send({ type: "watch", ticket: currentTicket() }); }, 20000 + Math.random() * 5000);

document.addEventListener("visibilitychange", () => {
  if (!document.hidden && staleWhileHidden) { staleWhileHidden = false; catchUp(); }
});
window.addEventListener("focus", () => { if (everConnected) catchUp(); });
// Some writers cannot reach this page's socket at all (a management command in the embedded
// mode, with its in-process channel layer), so a visible page also catches up once a minute.
setInterval(() => { if (!document.hidden) catchUp(); }, 60000 + Math.random() * 10000);

// Inline handlers are not allowed by the pages' Content-Security-Policy.
for (const select of document.querySelectorAll("select[data-submit-on-change]")) {
  select.addEventListener("change", () => select.form.requestSubmit ? select.form.requestSubmit() : select.form.submit());
}

connect();
