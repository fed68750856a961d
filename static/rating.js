// Rating answers blind (templates/evaluation/htmx/rating.html), keyboard first: 1-5 relevance, y / n unsupported,
// Enter saves and the next answer is swapped in (htmx), with the focus on it.
(function () {
  "use strict";

  function panel() {
    return document.querySelector("[data-rating-panel]");
  }

  function choose(name, value) {
    const input = panel() && panel().querySelector(`input[name="${name}"][value="${value}"]`);
    if (input) {
      input.checked = true;
      input.dispatchEvent(new Event("change", { bubbles: true }));
      return true;
    }
    return false;
  }

  function focusPanel() {
    const current = panel();
    if (current) {
      current.focus();
    }
  }

  document.addEventListener("keydown", function (event) {
    const form = panel() && panel().querySelector("form[data-rating-form]");
    if (!form || event.ctrlKey || event.metaKey || event.altKey || event.isComposing) {
      return;
    }
    const target = event.target;
    if (target.matches && target.matches("textarea, select, input:not([type=radio])")) {
      return; // typing belongs to the field
    }
    let handled = false;
    if (/^[1-5]$/.test(event.key)) {
      handled = choose("relevance", event.key);
    } else if (event.key === "y" || event.key === "n") {
      handled = choose("unsupported", event.key === "y" ? "yes" : "no");
    } else if (event.key === "Enter" && !(target.matches && target.matches("button, a, summary"))) {
      form.requestSubmit(); // the browser's check of the two required choices first, then htmx posts it
      handled = true;
    }
    if (handled) {
      event.preventDefault();
    }
  });

  // A 400 (a question left unanswered) still carries the panel, with what is missing: swap it in.
  document.addEventListener("htmx:beforeSwap", function (event) {
    if (event.detail.xhr.status === 400 && event.detail.target.id === "rating") {
      event.detail.shouldSwap = true;
      event.detail.isError = false;
    }
  });

  document.addEventListener("htmx:afterSettle", function (event) {
    if (panel() && !document.activeElement.closest("[data-rating-panel]")) {
      focusPanel();
    }
  });

  document.addEventListener("DOMContentLoaded", focusPanel);
})();
