// Upload a JSONL, JSON, CSV or Parquet file to the import API with a progress bar, then show its line-numbered
// report. Choosing a file first previews its first rows, with a column mapping suggested when they need one. A large
// file is imported by a worker (the answer is 202 with the job): the bar then follows the job until its report.
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
      // A refused request: {"detail": ...}, or a field's messages such as {"mapping": ["..."]}.
      const field = report && Object.keys(report).find(function (key) {
        return Array.isArray(report[key]);
      });
      const message = report && (report.detail || (field && field + ": " + report[field].join(" ")));
      box.append(text("p", message || "The upload failed (" + status + ").", "banner error"));
      return;
    }
    const ok = status === 201;
    let summary;
    if (report.status === "succeeded") {
      summary = "Imported: " + report.created + " created, " + report.duplicates + " duplicates skipped, " +
        report.rejected + " rejected.";
    } else if (report.status === "partial") {
      summary = "Imported in part: " + report.created + " created, " + report.duplicates + " duplicates skipped, " +
        report.rejected + " rejected (listed below).";
    } else if (report.error) {
      summary = "Nothing was written: the import stopped (" + report.error + ").";
    } else if (!report.total_lines) {
      summary = "Nothing was written: the file holds no examples.";
    } else if (report.mode === "atomic") {
      summary = "Nothing was written: " + report.rejected + " line(s) have errors (atomic mode). Fix them, or upload in partial mode.";
    } else {
      summary = "Nothing was written: every line (" + report.rejected + ") was rejected.";
    }
    box.append(text("p", summary, "banner " + (report.status === "succeeded" ? "success" : ok ? "warn" : "error")));
    const ignored = Object.keys(report.ignored_keys || {});
    if (ignored.length) {
      box.append(text("p", "Not imported (the mapping does not name them): " + ignored.join(", ") + ".", "muted"));
    }
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

  // A queued import: its detail, polled every second, moves the bar (bytes the worker has read) until the report.
  function follow(section, job, progress, status) {
    if (job.status !== "queued" && job.status !== "running") {
      progress.value = 100;
      status.textContent = "Done.";
      showReport(section, job.status === "succeeded" || job.status === "partial" ? 201 : 400, job);
      return;
    }
    if (job.status === "queued") {
      progress.removeAttribute("value");
      status.textContent = "Uploaded; waiting for a worker to import it…";
    } else {
      const share = job.size_bytes ? Math.min(99, Math.floor((100 * job.read_bytes) / job.size_bytes)) : 0;
      progress.value = share;
      status.textContent = "Importing… " + job.total_lines.toLocaleString() + " lines read (" + share + "%)";
    }
    window.setTimeout(function () {
      fetch(job.url, { headers: { Accept: "application/json" }, credentials: "same-origin" })
        .then(function (response) {
          if (!response.ok) {
            throw new Error(String(response.status));
          }
          return response.json();
        })
        .then(function (next) {
          follow(section, next, progress, status);
        })
        .catch(function () {
          // A lost answer: try again; the job goes on without the page.
          follow(section, job, progress, status);
        });
    }, 1000);
  }

  // The first megabyte is enough to preview a text file; a Parquet file keeps its index at the end, so it goes whole.
  function preview(section, form, withMapping) {
    const file = form.elements.file.files[0];
    const box = section.querySelector("[data-upload-preview]");
    if (!file) {
      box.replaceChildren();
      return;
    }
    const data = new FormData();
    data.append("file", /\.(parquet|pq)$/i.test(file.name) ? file : file.slice(0, 1 << 20), file.name);
    const mapping = form.querySelector("[data-upload-mapping]");
    if (withMapping && mapping) {
      data.append("mapping", mapping.value);
    }
    fetch(section.dataset.previewUrl, {
      method: "POST",
      body: data,
      headers: { "X-CSRFToken": csrfToken() },
      credentials: "same-origin",
    })
      .then(function (response) {
        return response.text();
      })
      .then(function (html) {
        box.innerHTML = html;
      })
      .catch(function () {
        box.replaceChildren(text("p", "The preview did not reach the server.", "banner error"));
      });
  }

  document.addEventListener("change", function (event) {
    const form = event.target.closest("[data-upload-form]");
    if (form && event.target.name === "file") {
      preview(form.closest("[data-upload]"), form, false);
    }
  });

  document.addEventListener("click", function (event) {
    const button = event.target.closest("[data-upload-repreview]");
    if (button) {
      const form = button.closest("[data-upload-form]");
      preview(form.closest("[data-upload]"), form, true);
    }
  });

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
    let url = section.dataset.url + "?mode=" + encodeURIComponent(form.elements.mode.value);
    const mapping = form.querySelector("[data-upload-mapping]");
    if (mapping && mapping.value.trim()) {
      url += "&mapping=" + encodeURIComponent(mapping.value.trim());
    }
    request.open("POST", url);
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
      let report = null;
      try {
        report = JSON.parse(request.responseText);
      } catch (error) {
        report = null;
      }
      if (request.status === 202 && report && report.url) {
        follow(section, report, progress, status);
        return;
      }
      progress.value = 100;
      status.textContent = "Done.";
      showReport(section, request.status, report);
    };
    request.onerror = function () {
      status.textContent = "The upload did not reach the server.";
    };
    request.send(data);
  });
})();
