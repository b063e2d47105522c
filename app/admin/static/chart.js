// gemgate admin: stacked bar charts in SVG from the page's usage data. No library, no build.
"use strict";
(function () {
  var source = document.getElementById("usage-data");
  if (!source) return;
  var data = JSON.parse(source.textContent);
  var NS = "http://www.w3.org/2000/svg";
  var COLORS = ["#2a5bd7", "#e8710a", "#1e8e3e", "#d01884", "#9334e6", "#12a4af", "#b26a00", "#c5221f", "#80868b"];
  var W = 560, H = 200, LEFT = 44, RIGHT = 6, TOP = 8, BOTTOM = 22;

  function el(name, attrs, parent) {
    var node = document.createElementNS(NS, name);
    for (var k in attrs) node.setAttribute(k, attrs[k]);
    if (parent) parent.appendChild(node);
    return node;
  }

  function label(seconds, withDate) {
    var d = new Date(seconds * 1000);
    var time = d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
    return withDate ? d.toLocaleDateString([], { month: "short", day: "numeric" }) + " " + time : time;
  }

  function niceMax(value) {
    if (value <= 5) return 5;
    var power = Math.pow(10, Math.floor(Math.log10(value)));
    var steps = [1, 2, 2.5, 5, 10];
    for (var i = 0; i < steps.length; i++) if (steps[i] * power >= value) return steps[i] * power;
    return 10 * power;
  }

  function short(n) {
    if (n >= 1e6) return (n / 1e6).toFixed(n >= 1e7 ? 0 : 1) + "M";
    if (n >= 1e3) return (n / 1e3).toFixed(n >= 1e4 ? 0 : 1) + "k";
    return String(n);
  }

  function draw(svg, series) {
    svg.setAttribute("viewBox", "0 0 " + W + " " + H);
    var count = data.count, plotW = W - LEFT - RIGHT, plotH = H - TOP - BOTTOM;
    var totals = new Array(count).fill(0);
    series.forEach(function (s) { s.values.forEach(function (v, i) { totals[i] += v; }); });
    var max = niceMax(Math.max.apply(null, totals.concat([0])));
    [0, 0.5, 1].forEach(function (f) {
      var y = TOP + plotH * (1 - f);
      el("line", { x1: LEFT, x2: W - RIGHT, y1: y, y2: y, "class": "grid" }, svg);
      el("text", { x: LEFT - 4, y: y + 3, "text-anchor": "end" }, svg).textContent = short(max * f);
    });
    var long = data.step * count > 86400;
    [0, Math.floor(count / 2), count].forEach(function (i, j) {
      var x = LEFT + plotW * i / count;
      el("text", { x: x, y: H - 6, "text-anchor": ["start", "middle", "end"][j] }, svg).textContent =
        label(data.start + data.step * i, long);
    });
    if (!series.length) {
      el("text", { x: LEFT + plotW / 2, y: TOP + plotH / 2, "text-anchor": "middle" }, svg).textContent = "No requests";
      return;
    }
    var barW = plotW / count;
    for (var i = 0; i < count; i++) {
      var base = 0;
      series.forEach(function (s, n) {
        var v = s.values[i];
        if (!v) return;
        var h = plotH * v / max, y = TOP + plotH * (1 - (base + v) / max);
        var rect = el("rect", { x: LEFT + i * barW + 0.5, y: y, width: Math.max(1, barW - 1), height: h,
                                fill: COLORS[n % COLORS.length] }, svg);
        el("title", {}, rect).textContent = s.name + ": " + v + " at " + label(data.start + data.step * i, long);
        base += v;
      });
    }
    var legend = svg.nextElementSibling;
    if (legend) {
      series.forEach(function (s, n) {
        var item = document.createElement("li");
        item.textContent = s.name + " (" + short(s.values.reduce(function (a, b) { return a + b; }, 0)) + ")";
        item.style.setProperty("--swatch", COLORS[n % COLORS.length]);
        legend.appendChild(item);
      });
    }
  }

  document.querySelectorAll("svg[data-chart]").forEach(function (svg) {
    draw(svg, data.charts[svg.getAttribute("data-chart")] || []);
  });
})();
