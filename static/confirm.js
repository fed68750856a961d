// On every page: destructive actions (a form with data-confirm) ask first. The Content-Security-Policy allows no
// inline handler: the question is data.
(function () {
  "use strict";

  document.addEventListener(
    "submit",
    function (event) {
      const question = event.target.dataset && event.target.dataset.confirm;
      if (question && !window.confirm(question)) {
        event.preventDefault();
        event.stopImmediatePropagation();
      }
    },
    true
  );
})();
