/* The broadcast form: the audience size (and who will be skipped, and why) as the segment and
 * template are picked. */
(function () {
  "use strict";
  document.addEventListener("DOMContentLoaded", function () {
    var segment = document.getElementById("id_segment");
    var template = document.getElementById("id_template");
    var source = document.getElementById("gambit-audience-url");
    if (!segment || !template || !source) return;
    var box = document.createElement("div");
    box.id = "gambit-audience-live";
    box.className = "help";
    box.setAttribute("aria-live", "polite");
    segment.parentNode.appendChild(box);
    function update() {
      if (!segment.value || !template.value) { box.textContent = ""; return; }
      var url = source.dataset.url + "?segment=" + encodeURIComponent(segment.value) +
        "&template=" + encodeURIComponent(template.value);
      fetch(url, { credentials: "same-origin" })
        .then(function (response) { return response.json(); })
        .then(function (data) {
          if (!data.text) { box.textContent = ""; return; }
          box.textContent = [data.text].concat((data.skipped || []).map(function (row) {
            return row.label + ": " + row.count;
          })).join(" · ");
        });
    }
    segment.addEventListener("change", update);
    template.addEventListener("change", update);
    update();
  });
})();
