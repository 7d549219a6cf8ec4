"""The figure checks of tools/browser_check.py (_ext/figures.py, _static/figures.js), by clicking.

On every page, every captioned figure (``figure.course-figure``):
  * is numbered "그림 N." / "Figure N." with N = 1, 2, ... in page order, and has a caption;
  * its image has an alt text in the edition's language (Hangul in Korean, none in English) that is
    not a file path, and is focusable (tabindex) as a button;
  * a click on it opens the enlarged view: an open modal dialog showing the same image at no less
    than its natural width, with a close button labelled 닫기 / Close; Esc closes it and the focus
    returns to the figure.
The first figure of a page is also opened with Enter (keyboard) and closed with a click outside the
image, and once more opened and closed with the close button. Images of code cells without a caption
are counted (they can be enlarged too) but not required to have one: tests/test_figures.py decides
which chapters must caption every figure.
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "_ext"))
from figures import HANGUL, PATH_LIKE  # noqa: E402

NUMBER = {"ko": "그림 {n}.", "en": "Figure {n}."}
CLOSE = {"ko": "닫기", "en": "Close"}

FIGURES_JS = r"""
return [...document.querySelectorAll('figure.course-figure')].map(f => {
  const img = f.querySelector('img');
  return {id: f.id, number: (f.querySelector('.caption-number') || {}).textContent || '',
          caption: ((f.querySelector('.caption-text') || {}).textContent || '').trim(),
          alt: img ? img.getAttribute('alt') || '' : null, natural: img ? img.naturalWidth : 0,
          tabindex: img ? img.getAttribute('tabindex') : null, role: img ? img.getAttribute('role') : null};
});
"""
OPEN_FOLDS_JS = r"""
const opened = [];
for (let d = arguments[0].closest('details:not([open])'); d; d = d.parentElement.closest('details:not([open])')) {
  d.open = true; opened.push(d);
}
return opened;
"""
UNCAPTIONED_JS = "return document.querySelectorAll('.cell_output img:not(figure.course-figure img)').length;"

DIALOG_JS = r"""
const d = document.querySelector('dialog.figure-zoom');
if (!d) return {open: false, exists: false};
const img = d.querySelector('img'), btn = d.querySelector('.figure-zoom-close');
const a = document.activeElement;
return {exists: true, open: d.open, modal: d.matches(':modal'), src: img ? img.src : null,
        width: img ? img.getBoundingClientRect().width : 0, natural: img ? img.naturalWidth : 0,
        loaded: img ? img.complete && img.naturalWidth > 0 : false, close: btn ? btn.textContent.trim() : null,
        focus: a ? (a.closest('figure') || {}).id || a.className : null, vw: window.innerWidth};
"""


def _state(drv, timeout=3.0, want_open=None):
    t0 = time.time()
    while True:
        s = drv.execute_script(DIALOG_JS)
        if want_open is None or (s["open"] == want_open and (not want_open or s["loaded"])) or time.time() - t0 > timeout:
            return s
        time.sleep(0.05)


def check_figures(drv, lang: str) -> tuple[list[str], int, int]:
    """(failures, captioned figures, uncaptioned output images) of the page open in drv."""
    from selenium.webdriver.common.by import By
    bad = []
    figs = drv.execute_script(FIGURES_JS)
    n_plain = drv.execute_script(UNCAPTIONED_JS)
    for i, f in enumerate(figs, start=1):
        name = f["id"] or f"figure {i}"
        want = NUMBER[lang].format(n=i)
        if f["number"].strip() != want:
            bad.append(f"{name}: expected the number {want!r} (got {f['number'].strip()!r})")
        if not f["caption"]:
            bad.append(f"{name}: expected a caption (got none)")
        elif lang == "en" and HANGUL.search(f["caption"]):
            bad.append(f"{name}: expected an English caption (got Hangul: {f['caption'][:60]!r})")
        alt = f["alt"] or ""
        if not alt.strip() or PATH_LIKE.search(alt):
            bad.append(f"{name}: expected an alt text describing the image (got {alt[:60]!r})")
        elif (lang == "ko") != bool(HANGUL.search(alt)):
            bad.append(f"{name}: expected the alt text in the {lang} edition's language (got {alt[:60]!r})")
        if f["tabindex"] != "0" or f["role"] != "button":
            bad.append(f"{name}: expected a focusable button (tabindex 0, role button; got {f['tabindex']}, {f['role']})")
    from selenium.common.exceptions import WebDriverException
    imgs = drv.find_elements(By.CSS_SELECTOR, "figure.course-figure img")
    for i, (f, img) in enumerate(zip(figs, imgs), start=1):
        try:
            bad += _enlarge(drv, f, img, i, lang)
        except WebDriverException as exc:
            bad.append(f"{f['id'] or f'figure {i}'}: expected a figure to click, focus and enlarge "
                       f"(got {type(exc).__name__}: {(exc.msg or '').splitlines()[0][:80]})")
            drv.execute_script("const d = document.querySelector('dialog.figure-zoom'); if (d && d.open) d.close();")
    return bad, len(figs), n_plain


def _enlarge(drv, f, img, i, lang) -> list[str]:
    """Open the i-th figure's enlarged view (Enter, click) and close it (outside, button, Esc)."""
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    bad = []
    name = f["id"] or f"figure {i}"
    folded = drv.execute_script(OPEN_FOLDS_JS, img)   # a figure inside a closed solution
    drv.execute_script("arguments[0].scrollIntoView({block: 'center'})", img)
    if i == 1:
        drv.execute_script("arguments[0].focus()", img)
        img.send_keys(Keys.ENTER)
        s = _state(drv, want_open=True)
        if not s["open"]:
            bad.append(f"{name}: Enter on the focused figure should open the enlarged view (it did not)")
        else:
            ActionChains(drv).move_to_element_with_offset(drv.find_element(By.CSS_SELECTOR, "dialog.figure-zoom"), 0, 0) \
                .move_by_offset(-s["vw"] // 2 + 5, 60).click().perform()     # the left margin, below the button
            if _state(drv, want_open=False)["open"]:
                bad.append(f"{name}: a click outside the image should close the enlarged view (it stayed open)")
        img.click()
        if _state(drv, want_open=True)["open"]:
            drv.find_element(By.CSS_SELECTOR, "dialog.figure-zoom .figure-zoom-close").click()
            if _state(drv, want_open=False)["open"]:
                bad.append(f"{name}: the close button should close the enlarged view (it stayed open)")
    img.click()
    s = _state(drv, want_open=True)
    if not s["open"] or not s["modal"]:
        bad.append(f"{name}: a click should open the enlarged view as a modal dialog (got {s})")
        drv.execute_script("arguments[0].forEach(d => { d.open = false; })", folded)
        return bad
    if s["src"] != img.get_attribute("src") or s["width"] + 1 < f["natural"]:
        bad.append(f"{name}: expected the image at its natural width {f['natural']} px "
                   f"(got {s['width']:.0f} px of {s['src']})")
    if s["close"] != CLOSE[lang]:
        bad.append(f"{name}: expected a close button labelled {CLOSE[lang]!r} (got {s['close']!r})")
    ActionChains(drv).send_keys(Keys.ESCAPE).perform()
    s = _state(drv, want_open=False)
    if s["open"]:
        bad.append(f"{name}: Esc should close the enlarged view (it stayed open)")
    elif s["focus"] != f["id"]:
        bad.append(f"{name}: expected the focus back on the figure after closing (got {s['focus']!r})")
    drv.execute_script("arguments[0].forEach(d => { d.open = false; })", folded)
    return bad
