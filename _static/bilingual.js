// The 한국어 | English switch: a link to the same page in the other edition, at the reader's section.
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

  // The reader's place: the page's explicit labels (<meta name="bilingual-labels">, written by
  // _ext/bilingual.py in document order) exist in both editions. The switch links to the label of
  // the page's #hash while its target is on screen (a deep link, also one near the end of a page
  // that cannot scroll it to the top), else to the section the reader is in: the last labelled
  // element whose top has passed the upper third of the window. Updated on load, hash changes,
  // scrolling, resizing, and on the click itself.
  var LABELS = (function () {
    var m = document.querySelector('meta[name="bilingual-labels"]');
    return m && m.content ? m.content.split(/\s+/).filter(Boolean) : [];
  })();

  function hashLabel() {
    var h = location.hash.slice(1);
    try { h = decodeURIComponent(h); } catch (e) {}
    return LABELS.indexOf(h) >= 0 ? h : null;
  }

  function currentLabel() {
    var header = document.querySelector(".bd-header");
    var limit = (header ? Math.max(header.getBoundingClientRect().bottom, 0) : 0) + 0.3 * window.innerHeight;
    var hash = hashLabel(), current = null, hashShown = false;
    for (var i = 0; i < LABELS.length; i++) {
      var el = document.getElementById(LABELS[i]);
      if (!el || !el.getClientRects().length) continue;        // missing, or inside a closed fold
      var top = el.getBoundingClientRect().top;
      if (LABELS[i] === hash) hashShown = top >= -2 && top < window.innerHeight;
      if (top <= limit) current = LABELS[i];
    }
    if (hashShown) return hash;
    return current;
  }

  function otherUrl(target, label) {
    // /…/ko/path/page.html  ->  /…/en/path/page.html#label  (the last /ko/ or /en/ segment)
    var p = location.pathname, re = /\/(ko|en)\//g, m, last = null;
    while ((m = re.exec(p)) !== null) last = m;
    if (!last) return null;
    return p.slice(0, last.index) + "/" + target + "/" + p.slice(last.index + 4) + (label ? "#" + label : "");
  }

  var links = [];
  function update() {
    var label = currentLabel();
    links.forEach(function (a) {
      var url = otherUrl(a.getAttribute("lang"), label);
      if (url && a.getAttribute("href") !== url) a.setAttribute("href", url);
    });
  }
  var pending = false;
  function later() {
    if (pending) return;
    pending = true;
    window.requestAnimationFrame(function () { pending = false; update(); });
  }

  // printing opens every fold, solutions included: _static/reader.js

  function build() {
    var box = document.createElement("span");
    box.className = "bilingual-switch";
    LANGS.forEach(function (l) {
      var el = document.createElement("a");
      el.addEventListener("click", function () {
        try { localStorage.setItem(KEY, l); } catch (e) {}
        if (l !== lang) update();                             // the href at the moment of the click
      });
      ["pointerenter", "focus", "touchstart"].forEach(function (ev) {
        if (l !== lang) el.addEventListener(ev, update, { passive: true });
      });
      el.textContent = LABEL[l];
      el.setAttribute("lang", l);
      if (l === lang) { el.classList.add("active"); el.setAttribute("aria-current", "true"); }
      else links.push(el);
      box.appendChild(el);
    });
    update();
    var where = document.querySelector(".article-header-buttons") ||
                document.querySelector(".header-article-items__end") || document.body;
    where.insertBefore(box, where.firstChild);
    translateAttributes();
    ["hashchange", "load", "resize"].forEach(function (ev) { window.addEventListener(ev, later); });
    window.addEventListener("scroll", later, { passive: true });
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", build); else build();
})();
