// Opt-in browser notifications and a short sound for tickets assigned to me and mentions;
// presence set by inactivity (away after 5 minutes without input, back on the next input).

const optin = document.querySelector("[data-notify-optin]");
const notice = document.getElementById("notice");
const presence = document.querySelector("[data-presence-select]");
const KEY = "oc.notifications";

function enabled() {
  return localStorage.getItem(KEY) === "on" && "Notification" in window && Notification.permission === "granted";
}

if (optin && "Notification" in window && !enabled()) {
  optin.hidden = false;
  optin.addEventListener("click", async () => {
    const permission = await Notification.requestPermission();
    if (permission === "granted") { localStorage.setItem(KEY, "on"); optin.hidden = true; }
  });
}

function beep() {
  try {
    const ctx = new (window.AudioContext || window.webkitAudioContext)();
    const osc = ctx.createOscillator();
    const gain = ctx.createGain();
    osc.frequency.value = 880;
    gain.gain.setValueAtTime(0.08, ctx.currentTime);
    gain.gain.exponentialRampToValueAtTime(0.0001, ctx.currentTime + 0.35);
    osc.connect(gain).connect(ctx.destination);
    osc.start();
    osc.stop(ctx.currentTime + 0.35);
  } catch (err) { /* no audio */ }
}

const labels = {
  mention: notice ? notice.dataset.labelMention : "",
  assigned: notice ? notice.dataset.labelAssigned : "",
};

document.addEventListener("oc:live", (ev) => {
  const data = ev.detail;
  if (data.type === "presence" && presence) { presence.value = data.status; return; }
  if (data.type !== "mention" && data.type !== "assigned") return;
  const text = (labels[data.type] || "").replace("%(number)s", data.ticket);
  if (notice) {
    notice.textContent = text;
    notice.dataset.kind = data.type;
    notice.dataset.ticket = data.ticket;
  }
  if (localStorage.getItem(KEY) === "on") beep();
  if (enabled() && document.hidden) {
    const n = new Notification("Omnicenter", { body: text, tag: `${data.type}-${data.ticket}` });
    n.onclick = () => { window.focus(); location.href = `/app/tickets/${data.ticket}/`; };
  }
});

// --- presence by inactivity -----------------------------------------------------------------
const AWAY_AFTER = 5 * 60 * 1000;
let lastInput = Date.now();
let autoAway = false;

async function setPresence(status) {
  const form = document.querySelector("[data-presence]");
  if (!form) return;
  const body = new FormData(form);
  body.set("status", status);
  body.set("auto", "1");
  await fetch(form.action, { method: "POST", body, credentials: "same-origin" });
}

for (const type of ["keydown", "pointerdown", "pointermove", "wheel"]) {
  document.addEventListener(type, () => {
    lastInput = Date.now();
    if (autoAway) { autoAway = false; setPresence("online"); if (presence) presence.value = "online"; }
  }, { passive: true });
}
setInterval(() => {
  if (!autoAway && presence && presence.value === "online" && Date.now() - lastInput > AWAY_AFTER) {
    autoAway = true;
    presence.value = "away";
    setPresence("away");
  }
}, 30000);
