// Polls the broadcast's progress endpoint and redraws the bar until the broadcast is finished.
(function () {
  "use strict";
  const FINISHED = ["completed", "cancelled", "failed"];
  const INTERVAL_MS = 2000;

  function draw(box, data) {
    const label = (name) => box.dataset["label" + name[0].toUpperCase() + name.slice(1)] || name;
    box.querySelector(".notif-progress-bar").style.width = data.percent + "%";
    box.querySelector(".notif-live-text").textContent =
      data.percent + "% — " +
      ["planned", "sent", "failed", "skipped"].map((k) => label(k) + ": " + data[k]).join(", ") +
      " (" + (data.state_label || data.state) + (data.state_reason ? ": " + data.state_reason : "") + ")";
    const reasons = data.skipped_labels || {};
    box.querySelector(".notif-live-reasons").textContent = Object.entries(data.skipped_by_reason)
      .map(([reason, count]) => (reasons[reason] || reason) + ": " + count)
      .join(", ");
  }

  function poll(box) {
    fetch(box.dataset.progressUrl, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then((response) => (response.ok ? response.json() : Promise.reject(response.status)))
      .then((data) => {
        draw(box, data);
        if (!FINISHED.includes(data.state)) {
          window.setTimeout(() => poll(box), INTERVAL_MS);
        }
      })
      .catch(() => window.setTimeout(() => poll(box), INTERVAL_MS * 3));
  }

  document.addEventListener("DOMContentLoaded", () => {
    const box = document.getElementById("notif-live");
    if (box) {
      poll(box);
    }
  });
})();
