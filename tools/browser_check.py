"""Open every page of both editions in headless Chromium and check what a reader gets.

    python tools/build_book.py && python tools/browser_check.py [_build/site]

The built site is served over http on a free local port (as a reader would get it, not file://).
Every page of ko/ and en/ is checked for:
  * console errors: any SEVERE entry of the browser log (a JavaScript error, a file that fails to load);
  * math: every equation Sphinx wrote (.math) was typeset by MathJax (an mjx-container inside it),
    no MathJax error (mjx-merror), and no raw TeX ($$, \\(, \\[, \\begin, $x$) left in the prose;
  * images: every <img> loaded (naturalWidth > 0);
  * folds: code cells tagged hide-cell have input and output inside a closed <details> and not
    shown; hide-input / hide-output likewise for their part; dropdown admonitions (prose solutions)
    show only their title;
  * the 한국어 | English switch: present, and its link to the other edition's page exists;
  * exercise solutions and the switch's place, by clicking (tools/browser_reader.py): every solution
    folded in one 풀이 N / Solution N dropdown, closed, opening on a click to its text, code and output,
    printed open; the switch, from a deep link and after a hash change, lands on the twin section;
  * the Korean edition's interface is Korean: none of the English strings of
    _ext/locale/ko/LC_MESSAGES/reader_ui.po (the theme strings the book translates) in the page's
    text, aria-labels, titles, tooltips or placeholders, and no attribute or interface text
    (outside the article) that is English words without Hangul; the English edition's interface
    (outside the article, outside lang="ko") has no Hangul;
  * the search page (with a query) lists results;
  * "Run this chapter" (tools/browser_run_box.py): on every chapter page one closed box in the
    edition's language, whose notebook (also the download button's) loads and holds only this
    edition's prose; no repository or launch link anywhere while `repository: url:` in _config.yml
    is empty, and the box's and the theme's links when it is set (`--repository-url` for a test build);
  * figures (tools/browser_figures.py): every captioned figure numbered 그림 N. / Figure N. in order,
    with a caption and an alt text in the edition's language; a click (or Enter) opens it at its
    natural width in a dialog that Esc, a click outside and the 닫기 / Close button close.
The root page (index.html) is opened in fresh Korean-, German- and English-language browsers: it
must send them to ko/, en/ and en/; a choice made with the switch must be followed on the next
visit; index.html?choose must show both editions without moving on.

Prints one line per page; exits 1 naming each failing page and the reason.
Needs Chromium and its driver (Debian: apt-get install chromium chromium-driver) and selenium.
"""
from __future__ import annotations

import argparse
import functools
import http.server
import shutil
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "_ext"))
from reader_ui import read_catalog  # noqa: E402
sys.path.insert(0, str(ROOT / "tools"))
from browser_run_box import check_run_box, configured_repository  # noqa: E402

sys.path.insert(0, str(ROOT))
from tools.browser_reader import check_solutions, check_switch_place, page_labels  # noqa: E402
from tools.browser_figures import check_figures  # noqa: E402

SKIP_DIRS = {"_static", "_sources", "_images", "_downloads"}
SEARCH_TERM = {"ko": "정규화", "en": "normalization"}

# Collected in the page: text and attributes a reader gets from the interface.
PAGE_JS = r"""
const out = {};
// not interface: code, outputs, math, search results (snippets of the pages' text)
const EXCL = 'pre, code, .cell_output, .output, script, style, mjx-container, noscript, ul.search';
const skip = (el, other) => el.closest(EXCL) || (other && el.closest('[lang="' + other + '"]'));
const lang = document.documentElement.lang;
const other = lang === 'ko' ? 'en' : 'ko';
const ATTRS = ['aria-label', 'title', 'placeholder', 'data-bs-title', 'data-bs-original-title',
               'data-tooltip', 'data-toggle-hint', 'alt'];
out.lang = lang;
out.attrs = []; out.texts = [];
for (const el of document.body.querySelectorAll('*')) {
  if (skip(el, other)) continue;
  for (const a of ATTRS) if (el.hasAttribute(a)) out.attrs.push([a, el.getAttribute(a), el.tagName]);
}
const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
let n;
while ((n = walker.nextNode())) {
  const p = n.parentElement;
  if (!p || skip(p, other)) continue;
  const t = n.textContent.replace(/\s+/g, ' ').trim();
  // content: the article, and links to it (tables of contents, previous/next titles)
  const content = !!p.closest('article, a.reference, .prev-next-title, .bd-toc-nav, .bd-sidenav');
  if (t) out.texts.push([t, content, p.tagName, !!p.closest('kbd')]);
}
// math
const maths = [...document.querySelectorAll('.math')];
out.math = maths.length;
out.math_unrendered = maths.filter(m => !m.querySelector('mjx-container')).map(m => m.textContent.trim().slice(0, 60));
out.math_errors = [...document.querySelectorAll('mjx-merror')].map(e => e.textContent.slice(0, 60));
out.mjx = document.querySelectorAll('mjx-container').length;
// images
const imgs = [...document.images];
out.img = imgs.length;
out.img_broken = imgs.filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.getAttribute('src'));
// folds
const shown = el => el.checkVisibility   // a closed <details> keeps its content laid out, but hidden
  ? el.checkVisibility({contentVisibilityAuto: true, visibilityProperty: true, opacityProperty: true})
  : el.getClientRects().length > 0;
const folded = el => !!el.closest('details:not([open])') && !shown(el);
out.folds = 0; out.fold_bad = [];
const parts = {'hide-cell': '.cell_input, .cell_output', 'hide-input': '.cell_input', 'hide-output': '.cell_output'};
for (const [tag, sel] of Object.entries(parts)) {
  document.querySelectorAll('.cell.tag_' + tag).forEach((cell, i) => {
    out.folds += 1;
    const inner = [...cell.querySelectorAll(sel)];
    if (!inner.length) out.fold_bad.push(tag + ' cell ' + i + ': nothing to fold');
    inner.filter(e => !folded(e)).forEach(e => out.fold_bad.push(tag + ' cell ' + i + ': ' + e.className.split(' ')[0] + ' shown'));
  });
}
document.querySelectorAll('.admonition.dropdown').forEach((ad, i) => {
  out.folds += 1;
  [...ad.children].filter(c => !c.classList.contains('admonition-title') && shown(c))
    .forEach(c => out.fold_bad.push('dropdown ' + i + ' (' + (ad.querySelector('.admonition-title') || ad).textContent.trim().slice(0, 30) + '): body shown'));
});
// the language switch
out.switch = [...document.querySelectorAll('.bilingual-switch a')].map(a => [a.getAttribute('lang'), a.href || null]);
out.icon = [...document.querySelectorAll('link[rel~="icon"]')].map(l => l.href);
// search results
const sr = document.querySelector('#search-results');
out.search = sr ? [sr.querySelectorAll('li').length, (sr.querySelector('p, .search-summary') || sr).textContent.trim().slice(0, 120)] : null;
return out;
"""

WAIT_JS = r"""
const done = arguments[arguments.length - 1];
const imgs = () => [...document.images].every(i => i.complete);
const math = (window.MathJax && MathJax.startup && MathJax.startup.promise) ? MathJax.startup.promise : Promise.resolve();
const search = new Promise(res => {
  if (!document.querySelector('#search-results') || !location.search.includes('q=')) return res();
  const t0 = Date.now();
  (function poll() {
    const sr = document.querySelector('#search-results');
    if (sr.querySelector('li') || /\d/.test(sr.textContent) || Date.now() - t0 > 15000) res(); else setTimeout(poll, 100);
  })();
});
Promise.all([math, search]).then(() => {
  const t0 = Date.now();
  (function poll() { if (imgs() || Date.now() - t0 > 10000) done('ok'); else setTimeout(poll, 100); })();
}, e => done('mathjax failed: ' + e));
"""



def _has_hangul(s: str) -> bool:
    return any("\uac00" <= c <= "\ud7a3" or "\u3131" <= c <= "\u318e" for c in s)


def _english_words(s: str) -> bool:
    """Two or more Latin words and no Hangul: 'Toggle primary sidebar', not 'CIFAR-10' or '.pdf'."""
    import re
    return not _has_hangul(s) and len(re.findall(r"[A-Za-z]{2,}", s)) >= 2


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


class QuietServer(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        # the browser leaving a page mid-download (a broken pipe) is not an error of the site
        if not isinstance(sys.exc_info()[1], (BrokenPipeError, ConnectionResetError)):
            super().handle_error(request, client_address)


def serve(site: Path):
    handler = functools.partial(QuietHandler, directory=str(site))
    srv = QuietServer(("127.0.0.1", 0), handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv, f"http://127.0.0.1:{srv.server_address[1]}"


def make_driver(accept_lang: str | None = None, size=(1300, 1600)):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    opts = webdriver.ChromeOptions()
    binary = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    if binary:
        opts.binary_location = binary
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                f"--window-size={size[0]},{size[1]}"):
        opts.add_argument(arg)
    if accept_lang:
        opts.add_argument(f"--lang={accept_lang.split(',')[0]}")
        opts.add_experimental_option("prefs", {"intl.accept_languages": accept_lang})
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver_path = shutil.which("chromedriver")
    service = Service(driver_path) if driver_path else Service()
    drv = webdriver.Chrome(service=service, options=opts)
    drv.set_page_load_timeout(60)
    drv.set_script_timeout(40)
    return drv


def pages(site: Path) -> list[str]:
    out = []
    for lang in ("ko", "en"):
        for p in sorted((site / lang).rglob("*.html")):
            rel = p.relative_to(site)
            if SKIP_DIRS & set(rel.parts):
                continue
            if 'http-equiv="Refresh"' in p.read_text(encoding="utf-8", errors="replace")[:2000]:
                continue                     # Jupyter Book's index.html -> intro.html redirect
            out.append(rel.as_posix())
    return out


def forbidden_strings() -> tuple[list[str], set[str]]:
    """The English interface strings the Korean edition translates: phrases (matched inside a
    text) and single words (matched as a whole text or attribute value)."""
    ids = list(read_catalog("ko"))
    phrases = [s for s in ids if " " in s.strip() or not s.strip().isalpha()]
    words = {s for s in ids if s not in phrases}
    return phrases, words


def exists(url: str) -> bool:
    try:
        with urllib.request.urlopen(url.split("#")[0], timeout=10) as r:
            return r.status == 200
    except (urllib.error.URLError, OSError):
        return False


def check_page(drv, base: str, rel: str, phrases, words) -> tuple[list[str], dict]:
    import re
    lang = rel.split("/")[0]
    url = f"{base}/{rel}"
    if rel.endswith("search.html"):
        url += "?q=" + urllib.request.quote(SEARCH_TERM[lang])
    drv.get(url)
    state = drv.execute_async_script(WAIT_JS)
    time.sleep(0.2)                          # late console messages
    info = drv.execute_script(PAGE_JS)
    logs = drv.get_log("browser")
    bad = []
    if state != "ok":
        bad.append(state)
    for e in logs:
        if e.get("level") == "SEVERE":
            bad.append("console error: " + e.get("message", "")[:300])
    if info["lang"] != lang:
        bad.append(f'<html lang="{info["lang"]}"> in the {lang} edition')
    if info["math_unrendered"]:
        bad.append(f'{len(info["math_unrendered"])} equation(s) not typeset, e.g. {info["math_unrendered"][0]!r}')
    if info["math_errors"]:
        bad.append(f'MathJax error(s): {info["math_errors"][:3]}')
    for text, _content, _tag, _kbd in info["texts"]:
        if re.search(r"\$\$|\\\(|\\\[|\\begin\{|(?<![\w$])\$[^\s$][^$\n]{0,80}?\$(?![\w$])", text):
            bad.append(f"raw TeX in the text: {text[:80]!r}")
            break
    if info["img_broken"]:
        bad.append(f'{len(info["img_broken"])} image(s) not loaded: {info["img_broken"][:3]}')
    bad += [f"fold: {b}" for b in info["fold_bad"]]
    sw = info["switch"]
    if len(sw) != 2:
        bad.append(f"language switch: {len(sw)} links (expected 2)")
    for l, href in sw:
        if l != lang and not (href and exists(href)):
            bad.append(f"language switch: the {l} page {href} does not exist")
    if not info["icon"] or not all(exists(h) for h in info["icon"]):
        bad.append(f'favicon missing or not found: {info["icon"]}')
    if info["search"] is not None and rel.endswith("search.html") and not info["search"][0]:
        bad.append(f'search for {SEARCH_TERM[lang]!r} listed nothing: {info["search"][1]!r}')
    # the interface's language
    seen = set()

    def flag(msg):
        if msg not in seen:
            seen.add(msg)
            bad.append(msg)
    if lang == "ko":
        for text, in_content, tag, in_kbd in info["texts"]:
            for ph in phrases:
                if ph in text:
                    flag(f"English interface text {ph!r} (in {text[:60]!r})")
            if text in words:
                flag(f"English interface text {text!r}")
            if not in_content and not in_kbd and _english_words(text):
                flag(f"English interface text {text[:60]!r} ({tag})")
        for attr, value, tag in info["attrs"]:
            v = value.strip()
            if attr == "alt":            # image descriptions are content; only the listed strings
                if v in words or any(ph in v for ph in phrases):
                    flag(f"English {attr}={v!r} ({tag})")
                continue
            if v in words or any(ph in v for ph in phrases) or _english_words(v):
                flag(f"English {attr}={v[:60]!r} ({tag})")
    else:
        for text, in_content, tag, in_kbd in info["texts"]:
            if not in_content and _has_hangul(text):
                flag(f"Korean interface text {text[:60]!r} in the English edition ({tag})")
        for attr, value, tag in info["attrs"]:
            if attr != "alt" and _has_hangul(value):
                flag(f"Korean {attr}={value[:60]!r} in the English edition ({tag})")
    return bad, info


def check_root(base: str) -> list[tuple[str, list[str]]]:
    """The root page picks the edition from the browser's languages and follows a stored choice."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait
    results = []
    for accept, want in (("ko-KR,ko", "ko"), ("de-DE,de", "en"), ("en-US,en", "en")):
        bad = []
        drv = make_driver(accept)
        try:
            drv.get(f"{base}/index.html")
            try:
                WebDriverWait(drv, 20).until(lambda d: "/intro.html" in d.current_url and
                                             d.execute_script("return document.readyState") == "complete")
                time.sleep(0.3)                  # late console messages
            except Exception:
                bad.append(f"stayed on {drv.current_url}")
            navlangs = drv.execute_script("return navigator.languages")
            got = drv.current_url.replace(base, "").lstrip("/").split("/")[0]
            if got != want:
                bad.append(f"navigator.languages {navlangs}: went to {got}/, expected {want}/")
            if accept.startswith("de") and not bad:
                # choose the other edition with the switch; the next visit to the root follows it
                drv.find_element(By.CSS_SELECTOR, '.bilingual-switch a[lang="ko"]').click()
                WebDriverWait(drv, 20).until(lambda d: "/ko/" in d.current_url)
                drv.get(f"{base}/index.html")
                try:
                    WebDriverWait(drv, 20).until(lambda d: "/ko/intro.html" in d.current_url)
                except Exception:
                    bad.append(f"after choosing 한국어 with the switch the root page went to {drv.current_url}")
                drv.get(f"{base}/index.html?choose")
                time.sleep(0.5)
                links = [a.get_attribute("data-edition") for a in drv.find_elements(By.CSS_SELECTOR, "a[data-edition]")]
                if "index.html?choose" not in drv.current_url or sorted(links) != ["en", "ko"]:
                    bad.append(f"index.html?choose: at {drv.current_url}, links {links}")
            for e in drv.get_log("browser"):
                if e.get("level") == "SEVERE":
                    bad.append("console error: " + e.get("message", "")[:300])
            results.append((f"index.html ({accept.split(',')[0]} browser -> {want})", bad))
        finally:
            drv.quit()
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("site", nargs="?", default=str(ROOT / "_build" / "site"), help="the built site (default: _build/site)")
    parser.add_argument("--only", help="check only the pages whose path contains this (index.html: the root page only)")
    parser.add_argument("--repository-url", help="the repository address the site was built with "
                        "(default: repository: url: in _config.yml; '' = none)")
    args = parser.parse_args()
    site = Path(args.site).resolve()
    if not (site / "index.html").is_file() or not (site / "ko").is_dir() or not (site / "en").is_dir():
        print(f"[browser_check] {site}: no built site (run python tools/build_book.py)", file=sys.stderr)
        return 2
    t_start = time.time()
    srv, base = serve(site)
    phrases, words = forbidden_strings()
    repo = configured_repository() if args.repository_url is None else args.repository_url
    failures = []
    try:
        if not args.only or args.only == "index.html":
            for name, bad in check_root(base):
                print(f"{'ok  ' if not bad else 'FAIL'} {name}", flush=True)
                for b in bad:
                    print(f"       {b}", flush=True)
                failures += [(name, b) for b in bad]
        drv = make_driver()
        try:
            todo = [p for p in pages(site) if not args.only or (args.only in p and args.only != "index.html")]
            for rel in todo:
                t0 = time.time()
                bad, info = check_page(drv, base, rel, phrases, words)
                bad += check_run_box(drv, rel, repo)
                sol_bad, n_sol = check_solutions(drv, "풀이" if rel.startswith("ko/") else "Solution")
                bad += sol_bad
                fig_bad, n_fig, n_plain = check_figures(drv, rel.split("/")[0])
                bad += fig_bad
                labels = page_labels((site / rel).read_text(encoding="utf-8"))
                bad += check_switch_place(drv, base, rel, labels, WAIT_JS)
                summary = (f"math {info['mjx']:4d}/{info['math']:<4d} img {info['img']:3d} "
                           f"folds {info['folds']:3d} solutions {n_sol:2d} labels {len(labels):3d} "
                           f"figures {n_fig:2d}+{n_plain:<2d} "
                           f"{time.time() - t0:4.1f} s")
                print(f"{'ok  ' if not bad else 'FAIL'} {rel:45s} {summary}", flush=True)
                for b in bad:
                    print(f"       {b}", flush=True)
                failures += [(rel, b) for b in bad]
        finally:
            drv.quit()
    finally:
        srv.shutdown()
    n_pages = len(todo)
    root = "" if args.only and args.only != "index.html" else " + the root page in 3 browsers"
    print(f"[browser_check] {n_pages} pages{root} "
          f"in {time.time() - t_start:.1f} s: {'OK' if not failures else f'{len(failures)} FAILURE(S)'}")
    if failures:
        for page, reason in failures:
            print(f"  {page}: {reason}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
