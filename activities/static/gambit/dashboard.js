/* The admin's charts, drawn by the vendored Chart.js (gambit/vendor/chart.umd.min.js): the index
 * dashboard (an honest funnel per activity and daily series, fetched as JSON) and an activity's
 * figures page (data embedded with json_script). Every chart has axes, its values written on the
 * bars and tooltips; texts come translated from the server (#gambit-chart-strings). */
(function () {
  "use strict";

  function css(name, fallback) {
    var value = getComputedStyle(document.documentElement).getPropertyValue(name).trim();
    return value || fallback;
  }

  /* Writes each non-zero value at the end of its bar. */
  var values = {
    id: "gambitValues",
    afterDatasetsDraw: function (chart) {
      var ctx = chart.ctx, horizontal = chart.options.indexAxis === "y";
      ctx.save();
      ctx.font = "12px sans-serif";
      ctx.fillStyle = css("--body-fg", "#333");
      ctx.textAlign = horizontal ? "left" : "center";
      ctx.textBaseline = horizontal ? "middle" : "bottom";
      chart.data.datasets.forEach(function (dataset, i) {
        chart.getDatasetMeta(i).data.forEach(function (bar, j) {
          var value = dataset.data[j];
          if (!value) return;
          ctx.fillText(String(value), horizontal ? bar.x + 4 : bar.x, horizontal ? bar.y : bar.y - 2);
        });
      });
      ctx.restore();
    },
  };

  function draw(canvas, labels, data, options) {
    var t = options.t;
    var horizontal = Boolean(options.horizontal);
    var valueAxis = { beginAtZero: true, ticks: { precision: 0 }, title: { display: true, text: options.valueTitle || t.count },
      grace: "10%" };
    var categoryAxis = { title: { display: Boolean(options.categoryTitle), text: options.categoryTitle || "" } };
    return new window.Chart(canvas, {
      type: "bar",
      data: { labels: labels, datasets: [{ label: options.valueTitle || t.count, data: data,
        backgroundColor: options.colors || css("--primary", "#79aec8") }] },
      options: {
        indexAxis: horizontal ? "y" : "x",
        responsive: true,
        maintainAspectRatio: false,
        animation: false,
        plugins: { legend: { display: false }, tooltip: { enabled: true } },
        scales: horizontal ? { x: valueAxis, y: categoryAxis } : { x: categoryAxis, y: valueAxis },
      },
      plugins: [values],
    });
  }

  function funnelColors() {
    return [css("--primary", "#79aec8"), "#9fc5d6", "#e0b84c", "#4caf50"];
  }

  function funnel(canvas, stages, t) {
    var keys = ["events", "passed_rules", "passed_limits", "granted"];
    return draw(canvas, keys.map(function (key) { return t[key]; }), keys.map(function (key) { return stages[key]; }),
      { t: t, horizontal: true, valueTitle: t.runs, colors: funnelColors() });
  }

  function daily(canvas, series, t, title) {
    return draw(canvas, series.map(function (point) { return point.day.slice(5); }),
      series.map(function (point) { return point.count; }), { t: t, valueTitle: title, categoryTitle: t.day });
  }

  /* Texts from data-t-<key> attributes (the dashboard) or a data-strings JSON attribute. */
  function strings(root) {
    if (root.dataset.strings) return JSON.parse(root.dataset.strings);
    var t = {};
    Object.keys(root.dataset).forEach(function (key) {
      if (/^t[A-Z_]/.test(key) && key.length > 1) t[key.charAt(1).toLowerCase() + key.slice(2)] = root.dataset[key];
    });
    return t;
  }

  function dashboard(root, t) {
    fetch(root.dataset.url, { credentials: "same-origin" })
      .then(function (response) { return response.json(); })
      .then(function (data) {
        var list = root.querySelector(".gambit-funnel");
        list.innerHTML = "";
        if (!data.funnel.length) list.textContent = t.empty;
        data.funnel.forEach(function (row) {
          var block = document.createElement("div");
          block.className = "gambit-funnel-activity";
          block.setAttribute("data-activity", row.code);
          var title = document.createElement("a");
          title.href = root.dataset.activityUrl + row.activity_id + "/figures/";
          title.textContent = row.name + " (" + row.code + ")";
          block.appendChild(title);
          var box = document.createElement("div");
          box.className = "gambit-chart-box gambit-chart-small";
          var canvas = document.createElement("canvas");
          canvas.setAttribute("data-chart", "funnel");
          box.appendChild(canvas);
          block.appendChild(box);
          list.appendChild(block);
          funnel(canvas, row, t);
        });
        root.querySelectorAll(".gambit-chart").forEach(function (card) {
          var series = data[card.dataset.series];
          var body = card.querySelector(".gambit-chart-body");
          body.innerHTML = "";
          if (series === null) { body.textContent = card.dataset.missing; return; }
          var box = document.createElement("div");
          box.className = "gambit-chart-box";
          var canvas = document.createElement("canvas");
          canvas.setAttribute("data-chart", card.dataset.series);
          box.appendChild(canvas);
          body.appendChild(box);
          daily(canvas, series, t, t[card.dataset.unit] || t.count);
        });
        root.setAttribute("data-loaded", "1");
      });
  }

  function figures(root, t) {
    var data = JSON.parse(root.dataset.figures);
    root.querySelectorAll("canvas[data-chart]").forEach(function (canvas) {
      var name = canvas.dataset.chart;
      if (name === "funnel") funnel(canvas, data.funnel, t);
      else if (name === "events_per_day") daily(canvas, data.events_per_day, t, t.events);
      else if (name === "participants_per_day") daily(canvas, data.participants_per_day, t, t.customers);
      else if (name === "grants_per_day") daily(canvas, data.grants_per_day, t, t.grants);
      else if (name === "grants_by_benefit") {
        draw(canvas, data.grants_by_benefit.map(function (row) { return row.name; }),
          data.grants_by_benefit.map(function (row) { return row.units; }), { t: t, horizontal: true, valueTitle: t.units });
      } else if (name === "rejections") {
        draw(canvas, data.rejections.map(function (row) { return row.label; }),
          data.rejections.map(function (row) { return row.count; }), { t: t, horizontal: true, valueTitle: t.rejections });
      }
    });
    root.setAttribute("data-loaded", "1");
  }

  document.addEventListener("DOMContentLoaded", function () {
    if (typeof window.Chart === "undefined") return;
    var root = document.getElementById("gambit-dashboard");
    if (root) dashboard(root, strings(root));
    var page = document.getElementById("gambit-figures");
    if (page) figures(page, strings(page));
  });
})();
