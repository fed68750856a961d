// The "try the model" page: a refused message (400) still shows its reason in the reply's place (htmx swaps only
// 2xx answers by default).
document.addEventListener("htmx:beforeSwap", (event) => {
  if (event.detail.xhr.status === 400 && event.detail.elt.matches("[data-chat-form]")) {
    event.detail.shouldSwap = true;
    event.detail.isError = false;
  }
});
