// The web chat panel on a ticket page (templates/webchat/_ticket_panel.html): shows when the chat
// visitor types (chat.typing hints on /ws/agent/, which carry `chat_ticket`, not `ticket`, so that
// live.js does not re-fetch on them), and tells the visitor when the agent types or has seen the chat.

const script = document.querySelector("script[data-typing-url]");
const ticket = script.dataset.ticket;
const typingUrl = script.dataset.typingUrl;
const label = document.querySelector("[data-webchat-typing]");
const csrf = script.parentElement.querySelector("input[name=csrfmiddlewaretoken]");

function post(state) {
  const body = new URLSearchParams({ state });
  fetch(typingUrl, { method: "POST", body, credentials: "same-origin", headers: { "X-CSRFToken": csrf ? csrf.value : "" } })
    .catch(() => { /* a hint; nothing to do when it is lost */ });
}

let lastTyping = 0;
document.addEventListener("input", (ev) => {
  if (!ev.target.matches || !ev.target.matches("[data-composer-text]")) return;
  const now = Date.now();
  if (now - lastTyping > 2000) { lastTyping = now; post("typing"); }
});

function seen() { if (!document.hidden) post("seen"); }
seen();
document.addEventListener("visibilitychange", seen);
document.addEventListener("live:refreshed", seen);

let hide = null;
function socketUrl() {
  const configured = script.dataset.websocketUrl;
  if (configured) return configured.replace(/\/$/, "") + "/ws/agent/";
  return `${location.protocol === "https:" ? "wss:" : "ws:"}//${location.host}/ws/agent/`;
}
let attempt = 0;
function connect() {
  const ws = new WebSocket(socketUrl());
  ws.addEventListener("open", () => { attempt = 0; label.dataset.state = "live"; });
  ws.addEventListener("message", (msg) => {
    let data;
    try { data = JSON.parse(msg.data); } catch { return; }
    if (!data || data.type !== "chat.typing" || String(data.chat_ticket) !== ticket) return;
    label.textContent = label.dataset.label;
    clearTimeout(hide);
    hide = setTimeout(() => { label.textContent = ""; }, 5000);
  });
  ws.addEventListener("close", (ev) => {
    label.dataset.state = "offline";
    if (ev.code === 4401) return;
    attempt += 1;
    setTimeout(connect, Math.min(30000, 500 * 2 ** attempt) * (0.5 + Math.random()));
  });
}
connect();
