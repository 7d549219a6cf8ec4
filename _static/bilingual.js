// The 한국어 | English switch: a link to the same page in the other edition (#anchor kept).
// Each edition lives in a folder named ko/ or en/; window.BILINGUAL_MODE says which this is.
// Clicking the switch remembers the choice (localStorage), which the site's root page follows.
//
// window.BILINGUAL_UI (set by _ext/reader_ui.py, Korean edition only) holds the interface
// strings that only JavaScript writes: sphinx-copybutton's tooltips and sphinx-togglebutton's
// aria-label. This file runs after both scripts have loaded and before they add their buttons.
(function () {
  var LANGS = ["ko", "en"], LABEL = { ko: "한국어", en: "English" }, KEY = "course-reader-lang";
  var lang = LANGS.indexOf(window.BILINGUAL_MODE) >= 0 ? window.BILINGUAL_MODE : "ko";
  var UI = window.BILINGUAL_UI || null;
  document.documentElement.setAttribute("data-reader-lang", lang);

  // sphinx-copybutton picks its messages by <html lang> from a table without Korean, when it
  // loads; its globals (messages, locale, iconCopy, iconCheck) are script-scope `let`/`const`.
  if (UI) {
    try {
      /* global messages, locale, iconCopy, iconCheck */
      if (typeof messages === "object" && typeof locale === "string" && !messages[lang]) {
        var en = messages[locale];
        messages[lang] = { copy: UI["Copy"], copy_to_clipboard: UI["Copy to clipboard"],
                           copy_success: UI["Copied!"], copy_failure: UI["Failed to copy"] };
        if (typeof iconCopy === "string") iconCopy = iconCopy.replace(en.copy_to_clipboard, messages[lang].copy_to_clipboard);
        if (typeof iconCheck === "string") iconCheck = iconCheck.replace(en.copy_success, messages[lang].copy_success);
        locale = lang;
      }
    } catch (e) { /* a newer copybutton: its tooltips stay English */ }
  }

  function translateAttributes() {
    // sphinx-togglebutton writes aria-label="Toggle hidden content" into the buttons it adds
    if (!UI) return;
    ["aria-label", "title", "data-tooltip", "data-bs-original-title"].forEach(function (attr) {
      document.querySelectorAll("[" + attr + "]").forEach(function (el) {
        var v = el.getAttribute(attr);
        if (Object.prototype.hasOwnProperty.call(UI, v)) el.setAttribute(attr, UI[v]);
      });
    });
  }

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
    translateAttributes();
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", build); else build();
})();
