// The dataset dashboard's charts, drawn from the numbers the page embeds (#chart-data).
(function () {
  "use strict";
  document.addEventListener("DOMContentLoaded", function () {
    const source = document.getElementById("chart-data");
    if (!source || typeof Chart === "undefined") {
      return;
    }
    const data = JSON.parse(source.textContent);
    const labelCanvas = document.getElementById("label-chart");
    if (labelCanvas) {
      new Chart(labelCanvas, {
        type: "bar",
        data: {
          labels: data.labels,
          datasets: [
            { label: "approved", data: data.approved, backgroundColor: "#1f5fbf" },
            { label: "all examples", data: data.all, backgroundColor: "#c9d6ea" },
            {
              label: "balanced target",
              data: data.labels.map(function () { return data.target; }),
              type: "line",
              borderColor: "#b3261e",
              borderDash: [6, 4],
              pointRadius: 0,
            },
          ],
        },
        options: { animation: false, responsive: false, scales: { y: { beginAtZero: true } } },
      });
    }
    const tokenCanvas = document.getElementById("token-chart");
    if (tokenCanvas && data.tokens) {
      const colors = { system: "#9aa5b1", user: "#1b7a3a", assistant: "#1f5fbf" };
      new Chart(tokenCanvas, {
        type: "bar",
        data: {
          labels: data.tokens.buckets.map(function (low, i) {
            const high = data.tokens.buckets[i + 1];
            return high ? low + "-" + (high - 1) : low + "+";
          }),
          datasets: Object.keys(data.tokens.histogram).map(function (role) {
            return { label: role, data: data.tokens.histogram[role], backgroundColor: colors[role] };
          }),
        },
        options: { animation: false, responsive: false, scales: { y: { beginAtZero: true } } },
      });
    }
  });
})();
