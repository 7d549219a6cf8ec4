"""The reader's checks of tools/browser_check.py that click: exercise solutions and the language switch.

* Solutions (_ext/solutions.py): every ``<details class="solution-dropdown">`` is closed on load, its
  body hidden; numbered 1..n in page order; a click on its title opens it and shows everything in
  it (its text, its code cells' input and output); a second click closes it. Printed (print media
  emulated with CDP ``Emulation.setEmulatedMedia``), every solution's body shows. The chapter uses
  no other fold: no hide-cell/hide-input/hide-output cell, no dropdown admonition.
* The 한국어 | English switch keeps the reader's place (_static/bilingual.js): opened at a deep link
  ``page.html#label`` (a label of ``<meta name="bilingual-labels">``), the switch points at the twin
  page's ``#label``, and following it lands there (the labelled element near the top of the window,
  or on screen at the end of a page too short to scroll it up). After a hash change (a link to
  another section, clicked in the page), the switch points at that section, and following it back
  lands there in the first edition.
"""
from __future__ import annotations

import re
import time

SOLUTIONS_JS = r"""
const shown = el => el.checkVisibility
  ? el.checkVisibility({contentVisibilityAuto: true, visibilityProperty: true, opacityProperty: true})
  : el.getClientRects().length > 0;
const parts = d => [...d.querySelectorAll('.solution-body > *, .solution-body .cell_input, .solution-body .cell_output, .solution-body p')];
return [...document.querySelectorAll('details.solution-dropdown')].map(d => ({
  n: d.dataset.solution, open: d.open, title: d.querySelector('summary').textContent.trim(),
  text: d.querySelectorAll('.solution-body > p, .solution-body > .math, .solution-body > ul, .solution-body > ol').length,
  code: d.querySelectorAll('.cell_input').length, output: d.querySelectorAll('.cell_output').length,
  hidden: parts(d).filter(e => !shown(e)).length, total: parts(d).length}));
"""

PLACE_JS = r"""
const label = arguments[0], other = arguments[1];
const el = document.getElementById(label);
const a = document.querySelector('.bilingual-switch a[lang="' + other + '"]');
const r = el ? el.getBoundingClientRect() : null;
const atEnd = window.scrollY + window.innerHeight >= document.documentElement.scrollHeight - 2;
return {href: a ? a.href : null, hash: decodeURIComponent(location.hash.slice(1)), path: location.pathname,
        top: r ? r.top : null, h: window.innerHeight, atEnd: atEnd,
        labels: (document.querySelector('meta[name="bilingual-labels"]') || {}).content || ''};
"""


def _wait_ready(drv, wait_js: str) -> None:
    drv.execute_async_script(wait_js)
    time.sleep(0.4)                          # the switch updates on the next animation frame


def check_solutions(drv, title_word: str) -> tuple[list[str], int]:
    """Solutions closed, numbered 1..n, opening on click with all their content, printed open."""
    from selenium.webdriver.common.by import By
    bad = []
    sols = drv.execute_script(SOLUTIONS_JS)
    old = drv.execute_script("""return document.querySelectorAll('.cell[class*="tag_hide-"], .admonition.dropdown').length""")
    if old:
        bad.append(f"solutions: expected every fold to be a solution dropdown (got {old} "
                   "hide-cell/hide-input cell(s) or dropdown admonition(s): tag the cells solution-N)")
    numbers = [s["n"] for s in sols]
    if numbers != [str(i) for i in range(1, len(sols) + 1)]:
        bad.append(f"solutions: expected numbers 1..{len(sols)} in order (got {numbers})")
    for s in sols:
        if s["title"] != f"{title_word} {s['n']}":
            bad.append(f"solution {s['n']}: expected the title {title_word + ' ' + s['n']!r} (got {s['title']!r})")
        if s["open"] or s["hidden"] != s["total"]:
            bad.append(f"solution {s['n']}: expected closed on load (open={s['open']}, "
                       f"{s['total'] - s['hidden']} of {s['total']} parts shown)")
        if not (s["text"] or s["code"]):
            bad.append(f"solution {s['n']}: expected text or code inside (got nothing)")
    summaries = drv.find_elements(By.CSS_SELECTOR, "details.solution-dropdown > summary")
    for s, summary in zip(sols, summaries):
        drv.execute_script("arguments[0].scrollIntoView({block: 'center'})", summary)
        summary.click()
        after = drv.execute_script(SOLUTIONS_JS)[int(s["n"]) - 1]
        if not after["open"] or after["hidden"]:
            bad.append(f"solution {s['n']}: a click on its title should show all of it "
                       f"(open={after['open']}, {after['hidden']} of {after['total']} parts hidden)")
        summary.click()
        if drv.execute_script(SOLUTIONS_JS)[int(s["n"]) - 1]["open"]:
            bad.append(f"solution {s['n']}: a second click should close it (it stayed open)")
    if sols:
        drv.execute_cdp_cmd("Emulation.setEmulatedMedia", {"media": "print"})
        try:
            for _ in range(10):                  # the print styles apply on the next style update
                time.sleep(0.1)
                printed = drv.execute_script(SOLUTIONS_JS)
                if not any(s["hidden"] for s in printed):
                    break
        finally:
            drv.execute_cdp_cmd("Emulation.setEmulatedMedia", {"media": ""})
        for s in printed:
            if s["hidden"]:
                bad.append(f"solution {s['n']}: expected printed open ({s['hidden']} of {s['total']} parts hidden in print)")
    return bad, len(sols)


def _landed(info: dict, label: str) -> str | None:
    """None if the page shows the label's element near the top (or on screen at the page's end)."""
    if info["hash"] != label:
        return f"expected the address to end in #{label} (got #{info['hash']})"
    top = info["top"]
    if top is None:
        return f"no element #{label} on the page"
    if -3 <= top <= 0.35 * info["h"] or (info["atEnd"] and 0 <= top < info["h"]):
        return None
    return f"#{label} is {top:.0f} px from the top of a {info['h']} px window (expected near the top)"


def _follow_switch(drv, other: str, wait_js: str) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait
    link = drv.find_element(By.CSS_SELECTOR, f'.bilingual-switch a[lang="{other}"]')
    drv.execute_script("arguments[0].scrollIntoView({block: 'nearest'})", link)
    old = drv.current_url
    drv.execute_script("arguments[0].click()", link)   # the theme's header may cover it at some widths
    WebDriverWait(drv, 20).until(lambda d: d.current_url != old and f"/{other}/" in d.current_url
                                 and d.execute_script("return document.readyState") == "complete")
    _wait_ready(drv, wait_js)


def page_labels(html: str) -> list[str]:
    """The labels of a written page's <meta name="bilingual-labels"> (_ext/bilingual.py)."""
    m = re.search(r'<meta name="bilingual-labels" content="([^"]*)"', html)
    return m.group(1).split() if m else []


def check_switch_place(drv, base: str, rel: str, labels: list[str], wait_js: str) -> list[str]:
    """From a deep link to the twin section and, after a hash change, back to the other section."""
    lang = rel.split("/")[0]
    other = "en" if lang == "ko" else "ko"
    twin = f"/{other}/" + rel.split("/", 1)[1]
    if len(labels) < 2:
        return []
    deep, second = labels[len(labels) // 2], labels[-1] if labels[-1] != labels[len(labels) // 2] else labels[0]
    bad = []
    drv.get(f"{base}/{rel}#{deep}")
    _wait_ready(drv, wait_js)
    info = drv.execute_script(PLACE_JS, deep, other)
    if (why := _landed(info, deep)):
        bad.append(f"deep link #{deep}: {why}")
    if not (info["href"] or "").endswith(f"{twin}#{deep}"):
        return bad + [f"switch at the deep link #{deep}: expected a link to {twin}#{deep} (got {info['href']})"]
    _follow_switch(drv, other, wait_js)
    info = drv.execute_script(PLACE_JS, deep, lang)
    if (why := _landed(info, deep)):
        bad.append(f"switch from #{deep} to the {other} edition: {why}")
    # a hash change on the twin page: a link to another section, as a reader clicks one in the page
    drv.execute_script("""const l = arguments[0]; const a = [...document.querySelectorAll('a[href="#' + l + '"]')]
                            .find(a => a.getClientRects().length);
                          if (a) a.click(); else location.hash = l;""", second)
    time.sleep(0.6)
    info = drv.execute_script(PLACE_JS, second, lang)
    if (why := _landed(info, second)):
        bad.append(f"a link to #{second} on the {other} page: {why}")
    if not (info["href"] or "").endswith(f"/{rel}#{second}"):
        return bad + [f"switch after the hash change to #{second}: expected a link to /{rel}#{second} (got {info['href']})"]
    _follow_switch(drv, lang, wait_js)
    info = drv.execute_script(PLACE_JS, second, other)
    if (why := _landed(info, second)):
        bad.append(f"switch back from #{second} to the {lang} edition: {why}")
    return bad
