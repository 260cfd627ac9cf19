// Knowledge panel buttons put an article's text or link into the reply composer (static/js/insert.js).
document.addEventListener("click", (event) => {
  const button = event.target.closest("[data-kb-insert]");
  if (!button) return;
  document.dispatchEvent(new CustomEvent("oc:insert", { detail: { text: button.dataset.kbInsert } }));
});
