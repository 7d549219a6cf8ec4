// The 한국어 | English switch: a link to the same page in the other edition (#anchor kept).
// Each edition lives in a folder named ko/ or en/; window.BILINGUAL_MODE says which this is.
(function () {
  var LANGS = ["ko", "en"], LABEL = { ko: "한국어", en: "English" }, KEY = "course-reader-lang";
  var lang = LANGS.indexOf(window.BILINGUAL_MODE) >= 0 ? window.BILINGUAL_MODE : "ko";
  document.documentElement.setAttribute("data-reader-lang", lang);

  function otherUrl(target) {
    // /…/ko/path/page.html  ->  /…/en/path/page.html  (the last /ko/ or /en/ segment)
    var p = location.pathname, re = /\/(ko|en)\//g, m, last = null;
    while ((m = re.exec(p)) !== null) last = m;
    if (!last) return null;
    return p.slice(0, last.index) + "/" + target + "/" + p.slice(last.index + 4) + location.hash;
  }

  function build() {
    var box = document.createElement("span");
    box.className = "bilingual-switch";
    LANGS.forEach(function (l) {
      var el = document.createElement("a");
      var url = l === lang ? null : otherUrl(l);
      if (url) el.href = url;
      el.addEventListener("click", function () { try { localStorage.setItem(KEY, l); } catch (e) {} });
      el.textContent = LABEL[l];
      el.setAttribute("lang", l);
      if (l === lang) { el.classList.add("active"); el.setAttribute("aria-current", "true"); }
      box.appendChild(el);
    });
    var where = document.querySelector(".article-header-buttons") ||
                document.querySelector(".header-article-items__end") || document.body;
    where.insertBefore(box, where.firstChild);
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", build); else build();
})();
