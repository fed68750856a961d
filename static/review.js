// The review panel (templates/curation/review.html, review_empty.html): keyboard, focus, locks, failed saves, and long
// texts (editors fit their text, folds, rendered / raw).
(function () {
  "use strict";

  document.documentElement.classList.add("js"); // the stylesheet lets the script size the editors

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

  // While a dialog or an overlay is open (the shortcuts help), the queue's keys belong to it: nothing acts on the
  // example hidden behind it.
  function overlayOpen() {
    return document.querySelector("dialog[open], [aria-modal=true]:not([hidden])") !== null;
  }

  function comment() {
    return panel() && panel().querySelector("textarea[data-comment]");
  }

  function writeComment() {
    const area = comment();
    if (area) {
      area.focus();
    }
  }

  function editAnswer() {
    const answers = panel() ? panel().querySelectorAll("textarea[data-answer]") : [];
    const answer = answers[answers.length - 1]; // the answer the example trains: the last one
    if (answer) {
      showRendered(false);
      answer.focus();
      answer.setSelectionRange(answer.value.length, answer.value.length);
    }
  }

  // Long texts. Every editor is as tall as its text, so nothing hides behind an inner scroll bar; a long user turn
  // starts folded (o unfolds every one, and the choice is kept for the next examples); m shows the turns rendered
  // from Markdown by the server, or raw.
  function fit(area) {
    if (!area.offsetParent) {
      return; // not shown (a folded system prompt, the rendered view): fitted when it shows
    }
    const top = window.scrollY;
    area.style.height = "auto";
    area.style.height = area.scrollHeight + area.offsetHeight - area.clientHeight + "px";
    window.scrollTo(window.scrollX, top);
  }

  function fitAll() {
    if (panel()) {
      panel().querySelectorAll("textarea[data-autosize]").forEach(fit);
    }
  }

  function remembered(key) {
    try {
      return window.localStorage.getItem("fineline." + key) === "1";
    } catch (error) {
      return false;
    }
  }

  function remember(key, on) {
    try {
      window.localStorage.setItem("fineline." + key, on ? "1" : "0");
    } catch (error) {
      // private mode: the choice lasts for this example only
    }
  }

  function setFolded(turn, folded) {
    turn.classList.toggle("folded", folded);
    const button = turn.querySelector("[data-fold]");
    if (button) {
      button.textContent = folded ? button.dataset.more : button.dataset.less;
      button.setAttribute("aria-expanded", folded ? "false" : "true");
    }
    const area = turn.querySelector("textarea[data-autosize]");
    if (area) {
      fit(area);
    }
  }

  function unfoldAll(open) {
    const current = panel();
    if (!current) {
      return;
    }
    current.querySelectorAll("[data-long]").forEach((turn) => setFolded(turn, !open));
    current.querySelectorAll("details[data-system]").forEach((details) => {
      details.open = open;
    });
    fitAll();
  }

  function toggleLong() {
    const current = panel();
    if (!current) {
      return;
    }
    const folded =
      current.querySelector("[data-long].folded") !== null ||
      current.querySelector("details[data-system]:not([open])") !== null;
    unfoldAll(folded);
    remember("unfold", folded);
  }

  function renderChanged(conversation) {
    const url = panel().dataset.renderUrl;
    conversation.querySelectorAll("textarea[data-autosize]").forEach((area) => {
      const target = area.parentElement.querySelector("[data-rendered]");
      const shown = area.dataset.renderedValue === undefined ? area.defaultValue : area.dataset.renderedValue;
      if (!target || !url || area.value === shown) {
        return;
      }
      area.dataset.renderedValue = area.value;
      const body = new URLSearchParams({ text: area.value });
      fetch(url, { method: "POST", headers: { "X-CSRFToken": csrfToken() }, body: body })
        .then((response) => (response.ok ? response.text() : Promise.reject(response.status)))
        .then((html) => {
          target.innerHTML = html; // the server's rendering: raw HTML in the text is escaped there
        })
        .catch(() => {
          delete area.dataset.renderedValue;
        });
    });
  }

  function showRendered(on) {
    const current = panel();
    const conversation = current && current.querySelector("[data-conversation]");
    if (!conversation) {
      return;
    }
    if (on) {
      renderChanged(conversation);
    }
    conversation.classList.toggle("show-rendered", on);
    const button = current.querySelector('[data-key="render"]');
    if (button) {
      button.textContent = on ? "show raw" : "show rendered";
      button.setAttribute("aria-pressed", on ? "true" : "false");
    }
    if (!on) {
      fitAll();
    }
  }

  function toggleRendered() {
    const conversation = panel() && panel().querySelector("[data-conversation]");
    const on = !(conversation && conversation.classList.contains("show-rendered"));
    showRendered(on);
    remember("rendered", on);
  }

  // A new example: the reader's choices (unfolded, rendered) carry over, and every editor fits its text.
  function preparePanel() {
    if (remembered("unfold")) {
      unfoldAll(true);
    }
    showRendered(remembered("rendered"));
    fitAll();
  }

  const keys = {
    a: () => click('[data-decision="approved"]'),
    r: () => click('[data-decision="rejected"]'),
    c: () => click('[data-decision="needs_changes"]'), // with no comment yet: into the comment (see "click")
    w: writeComment,
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
    o: toggleLong,
    m: toggleRendered,
    h: () => {
      const url = panel() && panel().dataset.historyUrl;
      if (url) {
        window.location.href = url;
      }
    },
    "?": showHelp,
  };

  document.addEventListener("keydown", function (event) {
    if (!panel() || event.altKey || event.isComposing || overlayOpen()) {
      return;
    }
    const target = event.target;
    const typing = target.matches(
      "textarea, input[type=text], input[type=search], input:not([type]), select, [contenteditable=true]"
    );
    if (typing) {
      if (event.key === "Escape") {
        target.blur();
        focusPanel();
        event.preventDefault();
      } else if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
        // From the comment after c: the "needs changes" it was opened for; from anywhere else: approve.
        const asked = target.matches("[data-comment]") && target.dataset.askedFor;
        click('[data-decision="' + (asked || "approved") + '"]');
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
    const target = event.target.closest(
      "[data-keep-mine], [data-key=help], [data-key=render], [data-fold], [data-decision], [data-retry]"
    );
    if (!target) {
      return;
    }
    if (target.matches("[data-decision]")) {
      const area = comment();
      if (target.dataset.decision === "needs_changes" && area && !area.value.trim()) {
        // "Needs changes" says what: the comment first (the server refuses an empty one too).
        event.preventDefault();
        area.dataset.askedFor = "needs_changes";
        area.placeholder = "What needs to change? Ctrl+Enter sends \u201cneeds changes\u201d.";
        area.focus();
        return;
      }
      lastDecision = target.dataset.decision;
    } else if (target.matches("[data-retry]")) {
      click('[data-decision="' + target.dataset.retry + '"]');
    } else if (target.matches("[data-fold]")) {
      const turn = target.closest("[data-long]");
      setFolded(turn, !turn.classList.contains("folded"));
    } else if (target.matches("[data-key=render]")) {
      toggleRendered();
    } else if (target.matches("[data-keep-mine]")) {
      // After a conflict: submit the expert's version, now based on the current version, with their decision.
      click('[data-decision="' + target.dataset.keepMine + '"]');
    } else {
      showHelp();
    }
  });

  // Closing the help (Esc, its button) gives the focus back to the example, so the next key is a shortcut again.
  document.addEventListener(
    "close",
    function (event) {
      // Only when the focus has nowhere else to be: a key pressed right after Esc (e, w) may already have moved it
      // into an editor, and "close" fires after it.
      const active = document.activeElement;
      const idle = !active || active === document.body || event.target.contains(active);
      if (event.target.matches && event.target.matches("dialog") && idle) {
        focusPanel();
      }
    },
    true
  );

  // After the next example slides in, focus lands on the panel so the next keystroke is a shortcut.
  document.addEventListener("htmx:afterSwap", function (event) {
    if (event.detail.target && event.detail.target.id === "review") {
      preparePanel();
      focusPanel();
      updateLock();
    }
  });

  document.addEventListener("input", function (event) {
    if (event.target.matches && event.target.matches("textarea[data-autosize]")) {
      fit(event.target);
    }
  });

  // Tabbing into a folded turn unfolds it; opening the system prompt fits its editor ("toggle" does not bubble).
  document.addEventListener("focusin", function (event) {
    const turn = event.target.closest && event.target.closest("[data-long].folded");
    if (turn && event.target.matches("textarea")) {
      setFolded(turn, false);
    }
  });
  document.addEventListener(
    "toggle",
    function (event) {
      if (event.target.matches && event.target.matches("details[data-system]")) {
        event.target.querySelectorAll("textarea[data-autosize]").forEach(fit);
      }
    },
    true
  );

  let resizing = null;
  window.addEventListener("resize", function () {
    clearTimeout(resizing);
    resizing = setTimeout(fitAll, 150); // a new width wraps the lines anew
  });

  // A save that fails (the server answers with an error, or the connection is cut) says so and keeps the expert's
  // text in the editors (nothing is swapped); the draft is saved again, and Retry (or the same key) sends it again.
  let lastDecision = null;

  function saveFailed(event, cut) {
    const elt = event.detail.elt;
    if (!elt || !elt.closest || !elt.closest("#review")) {
      return;
    }
    const status = cut ? 0 : event.detail.xhr.status;
    const why = cut ? "the connection to the server was cut" : "the server answered " + status;
    if (elt.matches("[data-autosave]")) {
      const line = document.getElementById("draft-status");
      if (line) {
        line.textContent = "Draft not saved (" + why + "); it is saved again at your next edit.";
      }
      return;
    }
    const box = panel() && panel().querySelector("[data-save-error]");
    if (!box) {
      return;
    }
    if (elt.id === "review-form") {
      box.textContent = "Not saved: " + why + ". Your edits are still here. ";
      const retry = document.createElement("button");
      retry.type = "button";
      retry.className = "primary";
      retry.dataset.retry = lastDecision || "approved";
      retry.textContent = "Retry";
      box.append(retry);
      const form = document.getElementById("review-form");
      form.dispatchEvent(new Event("input", { bubbles: true })); // the autosave keeps a draft of it
    } else {
      box.textContent = "Could not load that: " + why + ". Try again.";
    }
    box.hidden = false;
  }

  document.addEventListener("htmx:responseError", (event) => saveFailed(event, false));
  document.addEventListener("htmx:sendError", (event) => saveFailed(event, true));

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

  // A page that leaves its example (a closing tab, a reload, "previous") gives it back at once: its own claim only,
  // named by the token the claim issued, so a late release cannot undo the claim of the page after it.
  function releaseLock() {
    const current = panel();
    if (current && current.dataset.releaseUrl && current.dataset.lockToken) {
      const data = new FormData();
      data.append("csrfmiddlewaretoken", csrfToken());
      data.append("token", current.dataset.lockToken);
      navigator.sendBeacon(current.dataset.releaseUrl, data);
    }
  }

  window.addEventListener("pagehide", releaseLock);
  document.addEventListener("htmx:beforeRequest", function (event) {
    const elt = event.detail.elt;
    if (elt.matches && elt.matches("[data-key=prev]")) {
      releaseLock(); // "next" from there comes back to it while no colleague has taken it
    }
  });

  document.addEventListener("DOMContentLoaded", function () {
    preparePanel();
    focusPanel();
    updateLock();
  });
})();
