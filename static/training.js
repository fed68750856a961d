// Training pages: the launch form's presets, copy buttons, and the run's curves, redrawn after each htmx poll.
(function () {
  "use strict";

  function presetFill(select) {
    const source = document.getElementById("presets");
    const form = select.form;
    if (!source || !form) {
      return;
    }
    const preset = JSON.parse(source.textContent)[select.value];
    if (!preset) {
      return;
    }
    Object.keys(preset).forEach(function (name) {
      const field = form.elements[name];
      if (!field) {
        return;
      }
      const value = preset[name];
      if (field.type === "checkbox") {
        field.checked = Boolean(value);
      } else {
        field.value = Array.isArray(value) ? value.join(",") : value;
      }
    });
    showLora(form);
  }

  function showLora(form) {
    const lora = form.elements.method && form.elements.method.value === "lora";
    form.querySelectorAll("[data-lora]").forEach(function (row) {
      row.hidden = !lora;
    });
  }

  const charts = {};

  function dataset(label, values, color, dashed) {
    return { label: label, data: values, borderColor: color, backgroundColor: color, borderDash: dashed ? [6, 4] : [],
      pointRadius: 0, spanGaps: true, borderWidth: 1.5 };
  }

  function drawCharts() {
    const source = document.getElementById("run-series");
    if (!source || typeof Chart === "undefined") {
      return;
    }
    const series = JSON.parse(source.textContent);
    const plans = {
      "loss-chart": [["training loss", "loss", "#1f5fbf"], ["validation loss", "val_loss", "#b3261e"]],
      "accuracy-chart": [
        ["training token accuracy", "token_accuracy", "#1f5fbf"],
        ["validation token accuracy", "val_token_accuracy", "#b3261e"],
      ],
    };
    Object.keys(plans).forEach(function (id) {
      const canvas = document.getElementById(id);
      if (!canvas) {
        return;
      }
      const sets = plans[id].map(function (plan, i) {
        return dataset(plan[0], series[plan[1]], plan[2], i === 1);
      });
      sets[1].pointRadius = 2;
      if (charts[id]) {
        charts[id].data.labels = series.step;
        sets.forEach(function (set, i) { charts[id].data.datasets[i].data = set.data; });
        charts[id].update("none");
      } else {
        charts[id] = new Chart(canvas, {
          type: "line",
          data: { labels: series.step, datasets: sets },
          options: { animation: false, responsive: false, scales: { x: { title: { display: true, text: "step" } } } },
        });
      }
    });
  }

  function copy(text, button) {
    const done = function () {
      const before = button.textContent;
      button.textContent = "Copied";
      setTimeout(function () { button.textContent = before; }, 1500);
    };
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text).then(done);
    } else {  // plain http on a LAN: the old way still works
      const area = document.createElement("textarea");
      area.value = text;
      document.body.appendChild(area);
      area.select();
      document.execCommand("copy");
      area.remove();
      done();
    }
  }

  document.addEventListener("change", function (event) {
    if (event.target.name === "preset") {
      presetFill(event.target);
    } else if (event.target.name === "method") {
      showLora(event.target.form);
    }
  }, true);  // before htmx posts the form for the pre-flight, so that it sends the preset's values

  document.addEventListener("click", function (event) {
    const button = event.target.closest("[data-copy], [data-copy-from]");
    if (!button) {
      return;
    }
    const from = button.getAttribute("data-copy-from");
    copy(from ? document.querySelector(from).textContent : button.getAttribute("data-copy"), button);
  });

  function refresh() {
    drawCharts();
    const log = document.querySelector("pre.log");
    if (log) {
      log.scrollTop = log.scrollHeight;  // a tail: the newest line in view
    }
  }

  document.addEventListener("DOMContentLoaded", function () {
    const form = document.querySelector("[data-launch-form]");
    if (form) {
      showLora(form);
    }
    refresh();
  });
  document.addEventListener("htmx:afterSettle", refresh);
})();
