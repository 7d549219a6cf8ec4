// Figures (_ext/figures.py): a click on a figure's image, or Enter/Space on it (it is focusable),
// opens it at its natural size in a dialog the reader can scroll and pinch; Esc, a click outside
// the image and the close button (닫기 / Close) close it, and the focus returns to the figure.
// Interface strings come from window.COURSE_FIGURES_UI, in the edition's language.
(function () {
  "use strict";
  var UI = window.COURSE_FIGURES_UI || {};
  var dialog = null, big = null, closeBtn = null, source = null;
  function t(s) { return UI[s] || s; }

  function build() {
    dialog = document.createElement("dialog");
    dialog.className = "figure-zoom";
    dialog.setAttribute("aria-label", t("Enlarged figure"));
    closeBtn = document.createElement("button");
    closeBtn.type = "button";
    closeBtn.className = "figure-zoom-close";
    closeBtn.textContent = t("Close");
    var scroller = document.createElement("div");
    scroller.className = "figure-zoom-scroll";
    big = document.createElement("img");
    scroller.appendChild(big);
    dialog.appendChild(closeBtn);
    dialog.appendChild(scroller);
    closeBtn.addEventListener("click", function () { dialog.close(); });
    dialog.addEventListener("click", function (ev) { if (ev.target !== big) dialog.close(); });
    dialog.addEventListener("close", function () {
      document.documentElement.classList.remove("figure-zoom-open");
      if (source) source.focus();
    });
    document.body.appendChild(dialog);
  }

  function open(img) {
    if (!dialog) build();
    source = img;
    big.src = img.currentSrc || img.src;
    big.alt = img.alt;
    big.style.width = img.naturalWidth ? img.naturalWidth + "px" : "auto";   // its natural size
    document.documentElement.classList.add("figure-zoom-open");
    dialog.showModal();
    dialog.querySelector(".figure-zoom-scroll").scrollTo(0, 0);
    closeBtn.focus();
  }

  function init() {
    document.querySelectorAll("figure.course-figure img, .cell_output img").forEach(function (img) {
      if (img.closest("a") || img.classList.contains("figure-zoomable")) return;
      img.classList.add("figure-zoomable");
      img.tabIndex = 0;
      img.setAttribute("role", "button");
      img.setAttribute("aria-haspopup", "dialog");
      img.title = t("Enlarge the figure");
      img.addEventListener("click", function () { open(img); });
      img.addEventListener("keydown", function (ev) {
        if (ev.key === "Enter" || ev.key === " ") { ev.preventDefault(); open(img); }
      });
    });
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init); else init();
})();
