// The three-pane inbox: keyboard (j/k/x/r/n/a/e, / and ?), the highlighted row, bulk selection
// and bulk merge (a confirmation dialog, then the merge without a reload).
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

function togglePick() {
  const id = cursor || paneTicket();
  const box = id && document.querySelector(`#ticket-list tr[data-ticket-id="${id}"] [data-pick]`);
  if (!box) return;
  box.checked = !box.checked;
  box.dispatchEvent(new Event("change", { bubbles: true }));
}

document.addEventListener("keydown", (ev) => {
  if (ev.ctrlKey || ev.metaKey || ev.altKey) return;
  if (ev.key === "Escape" && typing(ev.target)) { ev.target.blur(); return; }
  if (typing(ev.target)) return;
  const help = document.getElementById("keyboard-help");
  const modal = document.querySelector("dialog[open]");
  if (modal && !(modal === help && ev.key === "?")) return; // a dialog has the keyboard
  switch (ev.key) {
    case "j": move(1); break;
    case "k": move(-1); break;
    case "x": togglePick(); break;
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
  const action = ev.target.closest("[data-bulk-action]");
  if (action) {  // merge takes no value: its dialog asks which ticket survives
    const value = action.form.querySelector("[data-bulk-value]");
    value.hidden = action.value === "merge";
    return;
  }
  const box = ev.target.closest("[data-pick]");
  if (!box) return;
  if (box.checked) picked.add(box.value); else picked.delete(box.value);
  syncBulk();
});

// --- bulk merge -----------------------------------------------------------------------------
// "Merge" in the bulk bar asks the server for the confirmation step (all of one customer? which
// ticket survives, the oldest preselected) and shows it in a modal dialog; confirming merges
// without a reload, and the list catches up at once (other agents' lists follow from the live
// events). Without this script the same form goes to the confirmation page instead.
const mergeDialog = () => document.querySelector("[data-merge-dialog]");
let mergeOpener = null;

function showInDialog(dialog, html) {
  dialog.innerHTML = html;
  if (!dialog.open) dialog.showModal();
  const first = dialog.querySelector("[data-merge-into]:checked") || dialog.querySelector("[data-merge-confirm], [data-merge-cancel]");
  if (first) first.focus();
}

async function mergeRequest(url, options, bulk) {
  const dialog = mergeDialog();
  try {
    const response = await fetch(url, { ...options, headers: { "HX-Request": "true" }, credentials: "same-origin" });
    const html = await response.text();
    if (response.ok || response.status === 400) return html;
  } catch (err) { /* offline: say so below */ }
  const failed = document.createElement("p");
  failed.className = "error";
  failed.setAttribute("role", "alert");
  failed.textContent = bulk.dataset.labelMergeFailed;
  const close = document.createElement("button");
  close.type = "button";
  close.dataset.mergeCancel = "";
  close.textContent = bulk.dataset.labelClose;
  dialog.replaceChildren(failed, close);
  if (!dialog.open) dialog.showModal();
  close.focus();
  return null;
}

async function openMerge(bulk) {
  const dialog = mergeDialog();
  mergeOpener = bulk.querySelector("[data-bulk-action]");
  const params = new URLSearchParams({ ids: bulk.querySelector("[data-bulk-ids]").value, state: bulk.elements.state.value });
  const html = await mergeRequest(`${bulk.dataset.mergeUrl}?${params}`, {}, bulk);
  if (html !== null) showInDialog(dialog, html);
}

async function confirmMerge(form) {
  const dialog = mergeDialog();
  const bulk = document.querySelector("[data-bulk]");
  const button = form.querySelector("[data-merge-confirm]");
  if (button) button.disabled = true;
  const html = await mergeRequest(form.action, { method: "POST", body: new FormData(form) }, bulk);
  if (html === null) return;
  const holder = document.createElement("div");
  holder.innerHTML = html;
  const done = holder.querySelector("[data-merge-done]");
  if (!done) { showInDialog(dialog, html); return; }
  dialog.close();
  const notice = document.getElementById("notice");
  if (notice) {
    notice.textContent = done.textContent;
    notice.dataset.kind = "merged";
    notice.dataset.ticket = done.dataset.into;
  }
  picked.clear();
  syncBulk();
  markRows();
  document.dispatchEvent(new Event("oc:refresh"));
}

document.addEventListener("submit", (ev) => {
  const bulk = ev.target.closest("[data-bulk]");
  if (bulk && bulk.querySelector("[data-bulk-action]").value === "merge" && mergeDialog()) {
    ev.preventDefault();
    openMerge(bulk);
    return;
  }
  const form = ev.target.closest("[data-merge-dialog] [data-merge-form]");
  if (form) { ev.preventDefault(); confirmMerge(form); }
});
document.addEventListener("click", (ev) => {
  const cancel = ev.target.closest("[data-merge-dialog] [data-merge-cancel]");
  if (cancel) { ev.preventDefault(); mergeDialog().close(); }
});
mergeDialog()?.addEventListener("close", () => {
  const dialog = mergeDialog();
  dialog.replaceChildren();
  if (mergeOpener && !mergeOpener.closest("[hidden]")) mergeOpener.focus();
});

document.body.addEventListener("htmx:afterSettle", markRows);
document.addEventListener("live:refreshed", markRows);
markRows();
