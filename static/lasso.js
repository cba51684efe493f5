// The lasso on the embedding map (templates/collections/macros.html, scatter): drag on an
// svg[data-lasso] to draw round points; on release, the points whose centres the drawn polygon
// encloses (even-odd ray casting over the drawn circles) are selected, marked, and their example
// ids put in the bulk form named by data-lasso, which then acts on them. Shift adds to the
// selection. The map arrives by htmx, so everything is delegated from the document.
(function () {
  "use strict";

  let drawing = null;

  function svgPoint(svg, event) {
    const point = svg.createSVGPoint();
    point.x = event.clientX;
    point.y = event.clientY;
    return point.matrixTransform(svg.getScreenCTM().inverse());
  }

  function inside(x, y, polygon) {
    let hit = false;
    for (let i = 0, j = polygon.length - 1; i < polygon.length; j = i++) {
      const a = polygon[i], b = polygon[j];
      if ((a.y > y) !== (b.y > y) && x < ((b.x - a.x) * (y - a.y)) / (b.y - a.y) + a.x) hit = !hit;
    }
    return hit;
  }

  function formOf(svg) {
    return document.getElementById(svg.dataset.lasso);
  }

  function select(svg, ids, adding) {
    const form = formOf(svg);
    if (!form) return;
    if (!adding) clear(svg);
    const have = new Set(Array.from(form.querySelectorAll('input[type="hidden"][name="ids"]')).map(function (i) { return i.value; }));
    ids.forEach(function (id) {
      if (have.has(id)) return;
      const input = document.createElement("input");
      input.type = "hidden";
      input.name = "ids";
      input.value = id;
      form.appendChild(input);
      const circle = svg.querySelector('circle[data-id="' + CSS.escape(id) + '"]');
      if (circle) circle.classList.add("lassoed");
    });
    changed(form);
  }

  function clear(svg) {
    const form = formOf(svg);
    if (form) form.querySelectorAll('input[type="hidden"][name="ids"]').forEach(function (i) { i.remove(); });
    svg.querySelectorAll("circle.lassoed").forEach(function (c) { c.classList.remove("lassoed"); });
    if (form) changed(form);
  }

  function changed(form) {
    const count = form.querySelectorAll('input[type="hidden"][name="ids"]').length;
    const submit = form.querySelector("[data-lasso-submit]");
    if (submit) submit.disabled = count === 0;
    document.dispatchEvent(new CustomEvent("bulk:changed"));
  }

  document.addEventListener("pointerdown", function (event) {
    const svg = event.target.closest && event.target.closest("svg[data-lasso]");
    if (!svg || event.button !== 0) return;
    event.preventDefault();
    svg.setPointerCapture(event.pointerId);
    drawing = { svg: svg, points: [svgPoint(svg, event)], adding: event.shiftKey };
  });

  document.addEventListener("pointermove", function (event) {
    if (!drawing) return;
    drawing.points.push(svgPoint(drawing.svg, event));
    const outline = drawing.svg.querySelector("polygon.lasso");
    if (outline) outline.setAttribute("points", drawing.points.map(function (p) { return p.x.toFixed(1) + "," + p.y.toFixed(1); }).join(" "));
  });

  document.addEventListener("pointerup", function () {
    if (!drawing) return;
    const done = drawing;
    drawing = null;
    const outline = done.svg.querySelector("polygon.lasso");
    if (outline) outline.setAttribute("points", "");
    if (done.points.length < 3) return;
    const ids = [];
    done.svg.querySelectorAll("circle[data-id]").forEach(function (circle) {
      const x = parseFloat(circle.getAttribute("cx")), y = parseFloat(circle.getAttribute("cy"));
      if (inside(x, y, done.points)) ids.push(circle.dataset.id);
    });
    select(done.svg, ids, done.adding);
  });

  document.addEventListener("click", function (event) {
    const button = event.target.closest && event.target.closest("[data-lasso-clear]");
    if (!button) return;
    const form = button.closest("form");
    const svg = form && document.querySelector('svg[data-lasso="' + CSS.escape(form.id) + '"]');
    if (svg) clear(svg);
  });
})();
