// Bulk forms (templates/review/_bulk.html): a form[data-bulk] acts on its ticked rows (checkboxes
// named "ids" that point at it with form="...", or hidden "ids" inputs a lasso on the map put
// in it), or, when none is ticked, on every example matching the table's filter. This keeps the
// sentence above the form saying which, and ticks a whole page at once.
(function () {
  "use strict";

  function ticked(form) {
    const boxes = document.querySelectorAll('input[type="checkbox"][name="ids"][form="' + form.id + '"]:checked');
    const drawn = form.querySelectorAll('input[type="hidden"][name="ids"]');
    return boxes.length + drawn.length;
  }

  function refresh() {
    document.querySelectorAll("form[data-bulk]").forEach(function (form) {
      const count = ticked(form);
      const some = form.querySelector("[data-bulk-ticked]");
      const all = form.querySelector("[data-bulk-all]");
      const shown = form.querySelector("[data-bulk-ticked-count]");
      if (shown) shown.textContent = count.toLocaleString();
      if (some) some.hidden = count === 0;
      if (all) all.hidden = count > 0;
    });
  }

  document.addEventListener("change", function (event) {
    const target = event.target;
    if (target.matches && target.matches("[data-tick-all]")) {
      const boxes = document.querySelectorAll('input[type="checkbox"][name="ids"][form="' + target.dataset.tickAll + '"]');
      boxes.forEach(function (box) { box.checked = target.checked; });
    }
    if (target.matches && target.matches('input[name="ids"], [data-tick-all]')) refresh();
  });
  document.addEventListener("bulk:changed", refresh);
  document.addEventListener("htmx:afterSwap", refresh);
  document.addEventListener("DOMContentLoaded", refresh);
})();
