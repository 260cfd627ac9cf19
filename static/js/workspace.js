// The three-pane inbox: keyboard (j/k/r/n/a/e, / and ?), the highlighted row, bulk selection.
// Everything is bound by delegation, so rows and panes swapped in by htmx or live refreshes work.

const list = () => document.getElementById("ticket-list");
const rows = () => [...document.querySelectorAll("#ticket-list tr[data-ticket-id]")];
let cursor = null; // ticket id of the highlighted row

function paneTicket() {
  const pane = document.querySelector("[data-pane]");
  return pane ? pane.dataset.ticket : null;
}

function markRows() {
  const current = paneTicket();
  for (const row of rows()) {
    row.classList.toggle("current", row.dataset.ticketId === current);
    row.classList.toggle("cursor", row.dataset.ticketId === cursor);
    if (row.dataset.ticketId === current) row.classList.remove("unread");
    const box = row.querySelector("[data-pick]");
    if (box) box.checked = picked.has(row.dataset.ticketId);
  }
}

function openRow(row) {
  const link = row && row.querySelector("[data-open-ticket]");
  if (link) link.click();
}

function move(step) {
  const all = rows();
  if (!all.length) return;
  let index = all.findIndex((r) => r.dataset.ticketId === (cursor || paneTicket()));
  index = index < 0 ? 0 : Math.max(0, Math.min(all.length - 1, index + step));
  cursor = all[index].dataset.ticketId;
  all[index].scrollIntoView({ block: "nearest" });
  openRow(all[index]);
  markRows();
}

function composer() { return document.querySelector("[data-composer]"); }

function write(kind) {
  const form = composer();
  if (!form) return;
  const radio = form.querySelector(`input[name="kind"][value="${kind}"]`);
  if (radio) { radio.checked = true; radio.dispatchEvent(new Event("change", { bubbles: true })); }
  form.querySelector("[data-composer-text]").focus();
}

function typing(target) {
  return target.closest("input, textarea, select, [contenteditable='true']") !== null;
}

document.addEventListener("keydown", (ev) => {
  if (ev.ctrlKey || ev.metaKey || ev.altKey) return;
  if (ev.key === "Escape" && typing(ev.target)) { ev.target.blur(); return; }
  if (typing(ev.target)) return;
  const help = document.getElementById("keyboard-help");
  switch (ev.key) {
    case "j": move(1); break;
    case "k": move(-1); break;
    case "r": write("reply"); break;
    case "n": write("note"); break;
    case "a": document.querySelector("[data-key-take]")?.click(); break;
    case "e": document.querySelector("[data-key-solve]")?.click(); break;
    case "/": {
      const box = document.querySelector("[data-composer-text]");
      if (!box) return;
      box.focus();
      box.value = box.value + (box.value && !box.value.endsWith(" ") ? " /" : "/");
      box.dispatchEvent(new Event("input", { bubbles: true }));
      break;
    }
    case "?": if (help) help.open ? help.close() : help.showModal(); break;
    default: return;
  }
  ev.preventDefault();
});

document.addEventListener("click", (ev) => {
  if (ev.target.closest("[data-keyboard-help]")) document.getElementById("keyboard-help")?.showModal();
});

// --- bulk selection -------------------------------------------------------------------------
const picked = new Set();
function syncBulk() {
  const form = document.querySelector("[data-bulk]");
  if (!form) return;
  form.hidden = picked.size === 0;
  form.querySelector("[data-bulk-ids]").value = [...picked].join(",");
  form.querySelector("[data-bulk-count]").textContent = String(picked.size);
}
document.addEventListener("change", (ev) => {
  const box = ev.target.closest("[data-pick]");
  if (!box) return;
  if (box.checked) picked.add(box.value); else picked.delete(box.value);
  syncBulk();
});

document.body.addEventListener("htmx:afterSettle", markRows);
document.addEventListener("live:refreshed", markRows);
markRows();
