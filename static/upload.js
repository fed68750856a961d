// Upload a JSONL or JSON file to the import API with a progress bar, then show its line-numbered report.
(function () {
  "use strict";

  function csrfToken() {
    try {
      return JSON.parse(document.body.getAttribute("hx-headers"))["X-CSRFToken"];
    } catch (error) {
      return "";
    }
  }

  function text(tag, content, className) {
    const element = document.createElement(tag);
    element.textContent = content;
    if (className) {
      element.className = className;
    }
    return element;
  }

  function showReport(section, status, report) {
    const box = section.querySelector("[data-upload-report]");
    box.replaceChildren();
    if (!report || report.created === undefined) {
      box.append(text("p", (report && report.detail) || "The upload failed (" + status + ").", "banner error"));
      return;
    }
    const ok = status === 201;
    const summary = ok
      ? "Imported: " + report.created + " created, " + report.duplicates + " duplicates skipped, " +
        report.rejected + " rejected."
      : "Nothing was written: " + report.rejected + " line(s) have errors (atomic mode). Fix them, or upload in partial mode.";
    box.append(text("p", summary, "banner " + (ok ? "success" : "error")));
    if (report.errors.length) {
      const table = document.createElement("table");
      table.className = "grid";
      table.setAttribute("data-upload-errors", "");
      table.append(text("caption", "First errors" + (report.errors_truncated ? " (more in the download)" : "")));
      report.errors.slice(0, 100).forEach(function (error) {
        const row = document.createElement("tr");
        row.append(text("td", "line " + error.line), text("td", error.code), text("td", error.message));
        table.append(row);
      });
      box.append(table);
      const link = text("a", "Download all errors (CSV)");
      link.href = section.dataset.url + report.id + "/errors/";
      link.setAttribute("data-upload-errors-link", "");
      box.append(link);
    }
  }

  document.addEventListener("submit", function (event) {
    const form = event.target.closest("[data-upload-form]");
    if (!form) {
      return;
    }
    event.preventDefault();
    const section = form.closest("[data-upload]");
    const file = form.elements.file.files[0];
    if (!file) {
      return;
    }
    const progress = section.querySelector("[data-upload-progress]");
    const status = section.querySelector("[data-upload-status]");
    const data = new FormData();
    data.append("file", file);
    const request = new XMLHttpRequest();
    request.open("POST", section.dataset.url + "?mode=" + encodeURIComponent(form.elements.mode.value));
    request.setRequestHeader("X-CSRFToken", csrfToken());
    request.setRequestHeader("Accept", "application/json");
    progress.hidden = false;
    progress.value = 0;
    request.upload.onprogress = function (progressEvent) {
      if (progressEvent.lengthComputable) {
        progress.value = Math.round((100 * progressEvent.loaded) / progressEvent.total);
        status.textContent = progress.value < 100 ? "Uploading… " + progress.value + "%" : "Checking every line…";
      }
    };
    request.onload = function () {
      progress.value = 100;
      status.textContent = "Done.";
      let report = null;
      try {
        report = JSON.parse(request.responseText);
      } catch (error) {
        report = null;
      }
      showReport(section, request.status, report);
    };
    request.onerror = function () {
      status.textContent = "The upload did not reach the server.";
    };
    request.send(data);
  });
})();
