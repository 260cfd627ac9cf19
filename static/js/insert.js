// Panels (knowledge base, catalog) put text into the open composer with
//   document.dispatchEvent(new CustomEvent("oc:insert", {detail: {text}}))
// and it lands at the cursor of the textarea marked data-composer-text.
document.addEventListener("oc:insert", (event) => {
  const box = document.querySelector("[data-composer-text]");
  const text = event.detail && event.detail.text;
  if (!box || !text) return;
  const start = box.selectionStart ?? box.value.length;
  const end = box.selectionEnd ?? box.value.length;
  box.value = box.value.slice(0, start) + text + box.value.slice(end);
  box.selectionStart = box.selectionEnd = start + text.length;
  box.dispatchEvent(new Event("input", { bubbles: true }));
  box.focus();
});
