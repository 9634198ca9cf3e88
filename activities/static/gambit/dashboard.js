/* The admin index dashboard: an activity funnel and daily bar charts, drawn as plain SVG from
 * the JSON the dashboard view returns. Texts come translated in the container's data-*. */
(function () {
  "use strict";
  var SVG = "http://www.w3.org/2000/svg";

  function svg(tag, attrs) {
    var node = document.createElementNS(SVG, tag);
    Object.keys(attrs).forEach(function (key) { node.setAttribute(key, attrs[key]); });
    return node;
  }

  function bars(container, series) {
    var width = 28 * series.length, height = 120, max = 1;
    series.forEach(function (point) { max = Math.max(max, point.count); });
    var chart = svg("svg", { viewBox: "0 0 " + width + " " + (height + 20), preserveAspectRatio: "none", role: "img" });
    series.forEach(function (point, i) {
      var h = Math.round((point.count / max) * height);
      var bar = svg("rect", { x: i * 28 + 4, y: height - h, width: 20, height: Math.max(h, 1), "data-day": point.day, "data-count": point.count });
      var title = svg("title", {});
      title.textContent = point.day + ": " + point.count;
      bar.appendChild(title);
      chart.appendChild(bar);
      if (i % 2 === 0) {
        var label = svg("text", { x: i * 28 + 4, y: height + 14 });
        label.textContent = point.day.slice(5);
        chart.appendChild(label);
      }
    });
    container.innerHTML = "";
    container.appendChild(chart);
  }

  function funnel(root, container, rows) {
    container.innerHTML = "";
    if (!rows.length) {
      container.textContent = root.dataset.empty;
      return;
    }
    rows.forEach(function (row) {
      var block = document.createElement("div");
      block.className = "gambit-funnel-activity";
      block.setAttribute("data-activity", row.code);
      var title = document.createElement("a");
      title.href = root.dataset.activityUrl + row.activity_id + "/change/";
      title.textContent = row.name + " (" + row.code + ")";
      block.appendChild(title);
      [["events", row.events], ["passed", row.passed_rules], ["granted", row.granted]].forEach(function (step) {
        var line = document.createElement("div");
        line.className = "gambit-funnel-row";
        line.setAttribute("data-step", step[0]);
        var label = document.createElement("span");
        label.className = "gambit-funnel-label";
        label.textContent = root.dataset[step[0]];
        var bar = document.createElement("span");
        bar.className = "gambit-funnel-bar";
        bar.style.width = Math.round((step[1] / Math.max(row.events, 1)) * 200) + "px";
        var value = document.createElement("span");
        value.className = "gambit-funnel-value";
        value.textContent = step[1];
        line.appendChild(label);
        line.appendChild(bar);
        line.appendChild(value);
        block.appendChild(line);
      });
      container.appendChild(block);
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    var root = document.getElementById("gambit-dashboard");
    if (!root) return;
    fetch(root.dataset.url, { credentials: "same-origin" })
      .then(function (response) { return response.json(); })
      .then(function (data) {
        funnel(root, root.querySelector(".gambit-funnel"), data.funnel);
        root.querySelectorAll(".gambit-chart").forEach(function (card) {
          var series = data[card.dataset.series];
          var body = card.querySelector(".gambit-chart-body");
          if (series === null) body.textContent = card.dataset.missing;
          else bars(body, series);
        });
        root.setAttribute("data-loaded", "1");
      });
  });
})();
