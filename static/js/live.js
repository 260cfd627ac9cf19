// Live hints for agent pages. The server pushes {"type", "ticket", "version"}; this page then
// re-fetches the fragment it shows, so HTML is rendered on the server only. Bursts are coalesced
// with a jittered debounce, and after a reconnect or when the tab regains focus the page catches
// up from the server, because a hint may have been missed while the socket was down.

const script = document.currentScript || document.querySelector("script[data-websocket-url]");
const configured = script ? script.dataset.websocketUrl : "";
const statusEl = document.getElementById("live-status");
const listEl = document.querySelector("[data-live-list]");
const timelineEl = document.querySelector("[data-live-ticket]");

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

const pending = new Map();
function refresh(el, url) {
  if (!el || pending.has(el)) return;
  // 150-400 ms: one refetch per burst, and many agents do not hit the server in the same instant.
  const delay = 150 + Math.random() * 250;
  pending.set(el, setTimeout(async () => {
    pending.delete(el);
    if (document.hidden) { staleWhileHidden = true; return; }
    try {
      const response = await fetch(url, { headers: { "HX-Request": "true" }, credentials: "same-origin" });
      if (response.ok) {
        el.innerHTML = await response.text();
        el.dispatchEvent(new CustomEvent("live:refreshed", { bubbles: true }));
      }
    } catch (err) { /* offline: the next hint or focus catches up */ }
  }, delay));
}

let staleWhileHidden = false;
function catchUp() {
  if (listEl) refresh(listEl, listEl.dataset.liveList);
  if (timelineEl) refresh(timelineEl, timelineEl.dataset.liveUrl);
}

function onEvent(event) {
  if (listEl) refresh(listEl, listEl.dataset.liveList);
  if (timelineEl && String(event.ticket) === timelineEl.dataset.liveTicket) refresh(timelineEl, timelineEl.dataset.liveUrl);
}

let attempt = 0;
let everConnected = false;
function connect() {
  const ws = new WebSocket(socketUrl());
  ws.addEventListener("open", () => {
    attempt = 0;
    setStatus("live");
    if (everConnected) catchUp();
    everConnected = true;
    document.body.dataset.live = "connected";
  });
  ws.addEventListener("message", (msg) => {
    let data;
    try { data = JSON.parse(msg.data); } catch { return; }
    if (data && data.ticket) onEvent(data);
  });
  ws.addEventListener("close", (ev) => {
    setStatus("offline");
    document.body.dataset.live = "disconnected";
    if (ev.code === 4401) { location.reload(); return; }  // signed out elsewhere
    attempt += 1;
    setTimeout(connect, Math.min(30000, 500 * 2 ** attempt) * (0.5 + Math.random()));
  });
}

document.addEventListener("visibilitychange", () => {
  if (!document.hidden && staleWhileHidden) { staleWhileHidden = false; catchUp(); }
});
window.addEventListener("focus", () => { if (everConnected) catchUp(); });
// Some writers cannot reach this page's socket at all (a management command in the embedded
// mode, with its in-process channel layer), so a visible page also catches up once a minute.
setInterval(() => { if (!document.hidden) catchUp(); }, 60000 + Math.random() * 10000);

// Inline handlers are not allowed by the pages' Content-Security-Policy.
for (const select of document.querySelectorAll("select[data-submit-on-change]")) {
  select.addEventListener("change", () => select.form.submit());
}

connect();
