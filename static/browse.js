// The example list's bulk selection (leads): check a page, or all that match the filter; confirm before a big action.
(function () {
  "use strict";

  function bar() {
    return document.querySelector("[data-bulk-bar]");
  }

  function checked() {
    return document.querySelectorAll("[data-bulk-id]:checked").length;
  }

  function update() {
    const count = document.querySelector("[data-bulk-checked]");
    if (count) {
      count.textContent = String(checked());
    }
  }

  document.addEventListener("change", function (event) {
    const target = event.target;
    if (target.matches("[data-bulk-page]")) {
      document.querySelectorAll("[data-bulk-id]").forEach((box) => {
        box.checked = target.checked;
      });
    }
    if (target.matches("[data-bulk-page], [data-bulk-id]")) {
      const ids = document.querySelector("[data-bulk-scope-ids]");
      if (ids) {
        ids.checked = true; // checking rows means "these", not "all that match"
      }
      update();
    }
  });

  // Rows appended by "Load more" come unchecked; the count follows.
  document.addEventListener("htmx:afterSwap", update);

  document.addEventListener("submit", function (event) {
    const form = event.target;
    if (!form.matches("[data-bulk-form]") || !bar()) {
      return;
    }
    const all = document.querySelector("[data-bulk-scope-all]");
    const action = document.querySelector("[data-bulk-action]");
    const name = action ? action.options[action.selectedIndex].text : "Apply";
    let count = checked();
    if (all && all.checked) {
      // Empty while the count is still on its way: the action takes every example the filter matches.
      count = document.querySelector("[data-bulk-matching]").dataset.bulkMatching || "every matching";
    } else if (count === 0) {
      window.alert("Check the examples to act on, or choose all that match the filter.");
      event.preventDefault();
      return;
    }
    if (!window.confirm(name + ": " + count + " example(s). Go ahead?")) {
      event.preventDefault();
    }
  });
})();
