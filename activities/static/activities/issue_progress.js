// Polls an issue's progress and redraws it until the issue is finished.
(function () {
  "use strict";
  const FINISHED = ["completed", "cancelled"];
  const INTERVAL_MS = 2000;

  function poll(box) {
    fetch(box.dataset.progressUrl, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then((response) => (response.ok ? response.json() : Promise.reject(response.status)))
      .then((data) => {
        const done = data.issued + data.skipped;
        box.querySelector("#issue-live-bar").value = data.audience ? Math.min(100, (100 * done) / data.audience) : 100;
        box.querySelector("#issue-live-text").textContent = data.text + " (" + data.state_label + ")";
        box.dataset.state = data.state;
        if (!FINISHED.includes(data.state)) {
          window.setTimeout(() => poll(box), INTERVAL_MS);
        }
      })
      .catch(() => window.setTimeout(() => poll(box), INTERVAL_MS * 3));
  }

  document.addEventListener("DOMContentLoaded", () => {
    const box = document.getElementById("issue-live");
    if (box) {
      poll(box);
    }
  });
})();
