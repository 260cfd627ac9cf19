// The composer: reply or note, the reply channel (SMS segment count), canned responses found by
// typing "/", "X is typing" hints, and a warning when something new lands while writing.
// Bound by delegation: the pane is swapped by htmx.

const TYPING_EVERY = 2500;
let lastTyping = 0;

function form() { return document.querySelector("[data-composer]"); }

// --- reply or note: the channel picker only matters for replies ------------------------------
function syncKind() {
  const f = form();
  if (!f) return;
  const kind = f.querySelector('input[name="kind"]:checked');
  const note = kind && kind.value === "note";
  f.classList.toggle("is-note", note);
  for (const el of f.querySelectorAll("[data-reply-only]")) el.hidden = note;
  smsCount();
}

// --- SMS segments (GSM-7: 160, or 153 per part; otherwise UCS-2: 70, or 67 per part) -----------
const GSM = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà";
const GSM_EXT = "^{}\\[~]|€";
export function smsSegments(text) {
  let gsm = true;
  let units = 0;
  for (const ch of text) {
    if (GSM.includes(ch)) units += 1;
    else if (GSM_EXT.includes(ch)) units += 2;
    else { gsm = false; break; }
  }
  if (!gsm) units = [...text].reduce((n, ch) => n + (ch.codePointAt(0) > 0xffff ? 2 : 1), 0);
  const single = gsm ? 160 : 70;
  const multi = gsm ? 153 : 67;
  return { chars: units, segments: units === 0 ? 0 : units <= single ? 1 : Math.ceil(units / multi) };
}

function smsCount() {
  const f = form();
  if (!f) return;
  const out = f.querySelector("[data-sms-count]");
  const target = f.querySelector("[data-target]");
  const kind = f.querySelector('input[name="kind"]:checked');
  const option = target && target.selectedOptions[0];
  const isSms = option && option.dataset.kind === "sms" && !(kind && kind.value === "note");
  if (!out) return;
  if (!isSms) { out.textContent = ""; return; }
  const { chars, segments } = smsSegments(f.querySelector("[data-composer-text]").value);
  out.textContent = f.dataset.labelSegments.replace("%(chars)s", chars).replace("%(segments)s", segments);
}

// --- canned responses: "/word" at the cursor ---------------------------------------------------
let cannedTimer = null;
function slashWord(box) {
  const before = box.value.slice(0, box.selectionStart ?? box.value.length);
  const match = before.match(/(^|\s)\/([^\s/]*)$/);
  return match ? { term: match[2], start: before.length - match[2].length - 1 } : null;
}

function closeCanned() {
  const results = document.querySelector("[data-canned-results]");
  if (results) { results.hidden = true; results.innerHTML = ""; }
}

function searchCanned(box) {
  const f = form();
  const found = slashWord(box);
  if (!f || !found) { closeCanned(); return; }
  clearTimeout(cannedTimer);
  cannedTimer = setTimeout(async () => {
    const url = `${f.dataset.cannedUrl}&q=${encodeURIComponent(found.term)}`;
    const response = await fetch(url, { credentials: "same-origin", headers: { "HX-Request": "true" } });
    if (!response.ok) return;
    const results = f.querySelector("[data-canned-results]") || document.querySelector("[data-canned-results]");
    results.innerHTML = await response.text();
    results.hidden = false;
  }, 120);
}

function insertCanned(button) {
  const box = document.querySelector("[data-composer-text]");
  if (!box) return;
  const found = slashWord(box);
  const text = button.dataset.cannedText;
  if (found) {
    const end = box.selectionStart ?? box.value.length;
    box.value = box.value.slice(0, found.start) + text + box.value.slice(end);
    box.selectionStart = box.selectionEnd = found.start + text.length;
  } else {
    document.dispatchEvent(new CustomEvent("oc:insert", { detail: { text } }));
  }
  closeCanned();
  box.focus();
  smsCount();
}

document.addEventListener("click", (ev) => {
  const item = ev.target.closest("[data-canned-text]");
  if (item) { ev.preventDefault(); insertCanned(item); }
});

document.addEventListener("keydown", (ev) => {
  const results = document.querySelector("[data-canned-results]");
  if (!results || results.hidden || !ev.target.matches("[data-composer-text]")) return;
  if (ev.key === "Enter" || ev.key === "Tab") {
    const first = results.querySelector("[data-canned-text]");
    if (first) { ev.preventDefault(); insertCanned(first); }
  } else if (ev.key === "Escape") { closeCanned(); }
});

document.addEventListener("input", (ev) => {
  if (!ev.target.matches("[data-composer-text]")) return;
  smsCount();
  searchCanned(ev.target);
  const f = form();
  const now = Date.now();
  if (f && ev.target.value && now - lastTyping > TYPING_EVERY) {
    lastTyping = now;
    document.dispatchEvent(new CustomEvent("oc:ws-send", { detail: { type: "typing", ticket: Number(f.dataset.ticket) } }));
  }
});

document.addEventListener("change", (ev) => {
  if (ev.target.closest("[data-composer]")) syncKind();
});

// --- something new while writing -----------------------------------------------------------
document.addEventListener("oc:live", (ev) => {
  const data = ev.detail;
  const f = form();
  if (!f || data.type !== "timeline.appended" || String(data.ticket) !== f.dataset.ticket) return;
  const box = f.querySelector("[data-composer-text]");
  if (!box.value.trim()) return;
  const warning = f.querySelector("[data-new-activity]");
  warning.textContent = f.dataset.labelNewActivity;
  warning.hidden = false;
});

document.body.addEventListener("htmx:afterSettle", syncKind);
syncKind();
