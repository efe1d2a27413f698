"use strict";
(function () {
  var data = JSON.parse(document.getElementById("layerslim-data").textContent);
  var tip = document.getElementById("tip");
  var units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
  function size(n) {
    if (n < 1024) return n + " B";
    var i = 0;
    while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
    return n.toFixed(1) + " " + units[i];
  }
  // A node is [parent, name, kept, debug, drop, shadowed, files, why].
  function where(nodes, i) {
    var parts = [];
    for (;;) {
      var n = nodes[i];
      if (n[0] < 0) return { layer: n[1], path: "/" + parts.reverse().join("/") };
      parts.push(n[1]);
      i = n[0];
    }
  }
  function line(cls, label, bytes, total) {
    var div = document.createElement("div");
    var sw = document.createElement("span");
    sw.style.background = "var(--" + cls + ")";
    div.appendChild(sw);
    div.appendChild(document.createTextNode(label + ": " + size(bytes) + " (" + (100 * bytes / total).toFixed(1) + "%)"));
    return div;
  }
  var lit = [];
  function show(svg, e) {
    var t = e.target;
    var n = t && t.dataset ? t.dataset.n : undefined;
    lit.forEach(function (r) { r.classList.remove("hl"); });
    lit = [];
    if (n === undefined) { tip.hidden = true; return; }
    var nodes = data[+svg.dataset.p], d = nodes[+n], w = where(nodes, +n);
    var total = d[2] + d[3] + d[4] + d[5];
    var b = document.createElement("b");
    b.textContent = w.path;
    var head = document.createElement("div");
    head.textContent = w.layer + " · " + size(total) + " in " + d[6] + (d[6] === 1 ? " file" : " files");
    var parts = [b, head];
    if (d[2]) parts.push(line("k", "kept", d[2], total));
    if (d[3]) parts.push(line("g", "debug sections", d[3], total));
    if (d[4]) parts.push(line("x", "dropped", d[4], total));
    if (d[5]) parts.push(line("s", "shadowed", d[5], total));
    if (d[7]) { var why = document.createElement("div"); why.textContent = d[7]; parts.push(why); }
    tip.replaceChildren.apply(tip, parts);
    tip.hidden = false;
    var x = e.clientX + 14, y = e.clientY + 14;
    if (x + tip.offsetWidth > window.innerWidth) x = e.clientX - tip.offsetWidth - 14;
    if (y + tip.offsetHeight > window.innerHeight) y = e.clientY - tip.offsetHeight - 14;
    tip.style.left = Math.max(0, x) + "px";
    tip.style.top = Math.max(0, y) + "px";
    svg.querySelectorAll('rect[data-n="' + n + '"]').forEach(function (r) { r.classList.add("hl"); lit.push(r); });
  }
  document.querySelectorAll("svg.map").forEach(function (svg) {
    svg.addEventListener("mousemove", function (e) { show(svg, e); });
    svg.addEventListener("mouseleave", function () { show(svg, {}); });
  });

  function sortBy(th) {
    var table = th.closest("table"), tbody = table.tBodies[0];
    var col = Array.prototype.indexOf.call(th.parentNode.children, th);
    var numeric = th.dataset.t === "n";
    var dir = th.getAttribute("aria-sort") === "descending" ? 1 : -1; // numbers: largest first
    if (!numeric) dir = th.getAttribute("aria-sort") === "ascending" ? -1 : 1;
    table.querySelectorAll("thead th").forEach(function (h) { h.removeAttribute("aria-sort"); });
    th.setAttribute("aria-sort", dir > 0 ? "ascending" : "descending");
    var rows = Array.prototype.slice.call(tbody.rows);
    rows.sort(function (a, b) {
      var x = a.cells[col], y = b.cells[col];
      if (numeric) return dir * (Number(x.dataset.v) - Number(y.dataset.v));
      return dir * x.textContent.localeCompare(y.textContent);
    });
    rows.forEach(function (r) { tbody.appendChild(r); });
  }
  document.querySelectorAll("table.sortable thead th").forEach(function (th) {
    th.addEventListener("click", function () { sortBy(th); });
  });

  // #selftest: what a browser test checks after the page has loaded.
  if (location.hash === "#selftest") {
    var out = [];
    var th = document.querySelector("table.sortable thead th[data-t=n]:nth-child(4)");
    if (th) {
      th.click();
      var v = Array.prototype.map.call(th.closest("table").tBodies[0].rows, function (r) { return Number(r.cells[3].dataset.v); });
      out.push("sorted=" + v.every(function (x, i) { return i === 0 || v[i - 1] >= x; }));
    }
    var r = document.querySelector("svg.map rect.s, svg.map rect.x, svg.map rect.g, svg.map rect.k");
    if (r) {
      r.dispatchEvent(new MouseEvent("mousemove", { bubbles: true, clientX: 10, clientY: 10 }));
      out.push("tip=" + (!tip.hidden && tip.textContent.indexOf("/") >= 0));
      r.dispatchEvent(new MouseEvent("mouseleave"));
    }
    document.documentElement.dataset.selftest = out.join(" ");
  }
  document.documentElement.dataset.ready = "1";
})();
