// Evaluation pages: a bar chart per metric (one bar per system), the run's loss curves, and the history.
(function () {
  "use strict";
  const COLORS = ["#1f5fbf", "#9aa5b1", "#6b8e23", "#b3261e", "#8a5cc2"];

  function read(id) {
    const node = document.getElementById(id);
    return node ? JSON.parse(node.textContent) : null;
  }

  document.addEventListener("DOMContentLoaded", function () {
    if (typeof Chart === "undefined") {
      return;
    }
    const data = read("metric-data");
    if (data) {
      document.querySelectorAll("canvas[data-metric]").forEach(function (canvas) {
        const metric = canvas.getAttribute("data-metric");
        new Chart(canvas, {
          type: "bar",
          data: {
            labels: data.systems,
            datasets: [{ label: metric.replace(/_/g, " "), data: data.series[metric],
              backgroundColor: data.systems.map(function (_, i) { return COLORS[i % COLORS.length]; }) }],
          },
          options: { animation: false, responsive: false, plugins: { legend: { display: false } },
            scales: { y: { beginAtZero: true } } },
        });
      });
    }
    const run = read("run-series");
    const runCanvas = document.getElementById("run-loss-chart");
    if (run && runCanvas) {
      new Chart(runCanvas, {
        type: "line",
        data: { labels: run.step, datasets: [
          { label: "training loss", data: run.loss, borderColor: "#1f5fbf", pointRadius: 0, borderWidth: 1.5 },
          { label: "validation loss", data: run.val_loss, borderColor: "#b3261e", borderDash: [6, 4], pointRadius: 2,
            spanGaps: true, borderWidth: 1.5 },
        ] },
        options: { animation: false, responsive: false },
      });
    }
    const history = read("history-data");
    const historyCanvas = document.getElementById("history-chart");
    if (history && historyCanvas) {
      new Chart(historyCanvas, {
        type: "line",
        data: { labels: history.labels, datasets: Object.keys(history.series).map(function (name, i) {
          return { label: name, data: history.series[name], borderColor: COLORS[i % COLORS.length], spanGaps: true };
        }) },
        options: { animation: false, responsive: false, scales: { y: { beginAtZero: true } } },
      });
    }
  });
})();
