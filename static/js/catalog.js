// Catalog panel: "Insert" puts the channel-appropriate product text into the composer through the
// shared oc:insert event (static/js/insert.js). Delegated, so results swapped in by htmx work too.
document.addEventListener("click", (event) => {
  const button = event.target.closest("[data-insert-text]");
  if (!button) return;
  event.preventDefault();
  document.dispatchEvent(new CustomEvent("oc:insert", { detail: { text: button.dataset.insertText } }));
});
