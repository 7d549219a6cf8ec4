// Printing a page (and the PDF editions, tools/pdf_book.py): every folded part comes out open,
// code cells tagged hide-cell/hide-input/hide-output and exercise solutions alike, and closes
// again afterwards. The "Run this chapter" box (_ext/run_box.py) stays closed: print leaves it out.
(function () {
  "use strict";
  var opened = [];
  window.addEventListener("beforeprint", function () {
    opened = [].slice.call(document.querySelectorAll("details:not([open]):not(.run-box)"));
    opened.forEach(function (d) { d.open = true; });
  });
  window.addEventListener("afterprint", function () {
    opened.forEach(function (d) { d.open = false; });
    opened = [];
  });
})();
