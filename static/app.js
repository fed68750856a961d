// The review panel's keyboard, focus and lock handling. Everything else is htmx and plain HTML.
(function () {
  "use strict";

  function panel() {
    return document.querySelector("[data-review-panel]");
  }

  function csrfToken() {
    try {
      return JSON.parse(document.body.getAttribute("hx-headers"))["X-CSRFToken"];
    } catch (error) {
      return "";
    }
  }

  function click(selector) {
    const element = panel() && panel().querySelector(selector);
    if (element && !element.disabled) {
      element.click();
      return true;
    }
    return false;
  }

  function focusPanel() {
    const current = panel();
    if (current) {
      current.focus({ preventScroll: false });
    }
  }

  function showHelp() {
    const dialog = document.getElementById("shortcuts");
    if (dialog && !dialog.open) {
      dialog.showModal();
    }
  }

  function editAnswer() {
    const answer = panel() && panel().querySelector("textarea[data-answer]");
    if (answer) {
      answer.focus();
      answer.setSelectionRange(answer.value.length, answer.value.length);
    }
  }

  const keys = {
    a: () => click('[data-decision="approved"]'),
    r: () => click('[data-decision="rejected"]'),
    c: () => click('[data-decision="needs_changes"]'),
    e: editAnswer,
    n: () => click('[data-key="next"]'),
    j: () => click('[data-key="next"]'),
    p: () => click('[data-key="prev"]'),
    k: () => click('[data-key="prev"]'),
    t: () => {
      const box = panel() && panel().querySelector("[data-edge-case]");
      if (box) {
        box.click();
      }
    },
    h: () => {
      const url = panel() && panel().dataset.historyUrl;
      if (url) {
        window.location.href = url;
      }
    },
    "?": showHelp,
  };

  document.addEventListener("keydown", function (event) {
    if (!panel() || event.altKey || event.isComposing) {
      return;
    }
    const target = event.target;
    const typing = target.matches("textarea, input[type=text], input[type=search], input:not([type]), select");
    if (typing) {
      if (event.key === "Escape") {
        target.blur();
        focusPanel();
        event.preventDefault();
      } else if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
        click('[data-decision="approved"]');
        event.preventDefault();
      }
      return;
    }
    if (event.ctrlKey || event.metaKey) {
      return;
    }
    if (/^[1-9]$/.test(event.key)) {
      const radio = panel().querySelector('[data-label-key="' + event.key + '"]');
      if (radio) {
        radio.checked = true;
        radio.dispatchEvent(new Event("input", { bubbles: true }));
        event.preventDefault();
      }
      return;
    }
    const action = keys[event.key];
    if (action) {
      event.preventDefault();
      action();
    }
  });

  document.addEventListener("click", function (event) {
    const target = event.target.closest("[data-keep-mine], [data-key=help]");
    if (!target) {
      return;
    }
    if (target.matches("[data-keep-mine]")) {
      // After a conflict: submit the expert's version, now based on the current version, with their decision.
      click('[data-decision="' + target.dataset.keepMine + '"]');
    } else {
      showHelp();
    }
  });

  // After the next example slides in, focus lands on the panel so the next keystroke is a shortcut.
  document.addEventListener("htmx:afterSwap", function (event) {
    if (event.detail.target && event.detail.target.id === "review") {
      focusPanel();
      updateLock();
    }
  });

  // A 409 (conflict, lock) or 422 (a rule broken) still carries the panel to show: swap it in.
  document.addEventListener("htmx:beforeSwap", function (event) {
    const status = event.detail.xhr.status;
    if ((status === 409 || status === 422) && event.detail.target.id === "review") {
      event.detail.shouldSwap = true;
      event.detail.isError = false;
    }
  });

  // The lock countdown ("lock 14:32 left"); the draft autosave extends the lock on the server.
  function lockUntil() {
    const saved = document.querySelector("[data-lock-until]");
    const current = panel();
    const value = (saved && saved.dataset.lockUntil) || (current && current.dataset.lockedUntil);
    return value ? new Date(value) : null;
  }

  function updateLock() {
    const label = panel() && panel().querySelector("[data-lock]");
    const until = lockUntil();
    if (!label || !until) {
      return;
    }
    const left = Math.max(0, Math.round((until - new Date()) / 1000));
    const minutes = Math.floor(left / 60);
    const seconds = String(left % 60).padStart(2, "0");
    label.textContent = left > 0 ? "lock " + minutes + ":" + seconds + " left" : "lock expired: save to claim it again";
  }

  setInterval(updateLock, 1000);

  // A closing tab gives its example back at once.
  window.addEventListener("pagehide", function () {
    const current = panel();
    if (current && current.dataset.releaseUrl && current.dataset.lockedUntil) {
      const data = new FormData();
      data.append("csrfmiddlewaretoken", csrfToken());
      navigator.sendBeacon(current.dataset.releaseUrl, data);
    }
  });

  document.addEventListener("DOMContentLoaded", function () {
    focusPanel();
    updateLock();
  });
})();
