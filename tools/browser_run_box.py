"""Browser checks of "Run this chapter" (_ext/run_box.py), called by tools/browser_check.py per page.

On every chapter page (ko/chapters/*.html, en/chapters/*.html):
  * exactly one run box, right under the title, closed, in the edition's language (its title, and
    Hangul in the Korean box's text, none in the English one's);
  * its notebook link and the page's .ipynb download button name the same file, which the server
    gives, and which is this chapter's notebook with only this edition's prose cells (as many as the
    source has for the edition, none of the other's) and every code cell of the source;
  * repository links only when the address is set (``repository: url:`` in _config.yml, or
    ``--repository-url`` for a test build): with it empty, no link to it, to a code host or to Binder
    anywhere on the page and no repository or launch button; with it set, the box links to it and
    the theme's repository button and a Binder launch button for this chapter are there.
Other pages: no run box, and the same rule for repository links.
"""
from __future__ import annotations

import json
import re
import sys
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "_ext"))
from edition_notebook import cell_langs  # noqa: E402
from run_box import TEXT  # noqa: E402

HOSTS = ("github.com", "gitlab.com", "bitbucket.org", "mybinder.org", "colab.research.google.com")
CHAPTER = re.compile(r"^(ko|en)/chapters/([^/]+)\.html$")

RUN_BOX_JS = r"""
const boxes = [...document.querySelectorAll('details.run-box')];
const a = sel => [...document.querySelectorAll(sel)].map(x => x.href);
const box = boxes[0];
return {
  n: boxes.length,
  lang: box ? box.getAttribute('data-run-box-lang') : null,
  open: box ? box.open : null,
  after_h1: box ? !!(box.previousElementSibling && box.previousElementSibling.tagName === 'H1') : null,
  title: box ? box.querySelector('summary').textContent.trim() : null,
  text: box ? box.textContent.replace(/\s+/g, ' ').trim() : null,
  notebook: a('details.run-box a[data-run-box="notebook"]'),
  repo_links: a('details.run-box a[data-run-box="repository"], details.run-box a[data-run-box="source"]'),
  download: a('.btn-download-source-button'),
  repo_button: a('.btn-source-repository-button'),
  launch: a('.dropdown-launch-buttons a, .btn-launch-binder-button, a.btn-launch-button'),
  links: a('a[href]'),
};
"""


def _has_hangul(s: str) -> bool:
    return any("\uac00" <= c <= "\ud7a3" for c in s)


def _fetch_json(url: str):
    with urllib.request.urlopen(url, timeout=10) as r:
        return json.loads(r.read().decode("utf-8"))


def check_notebook(url: str, lang: str, source: Path) -> list[str]:
    """The downloaded notebook is the source with only ``lang``'s prose cells."""
    try:
        nb = _fetch_json(url)
    except Exception as e:                      # noqa: BLE001 - report whatever went wrong
        return [f"run box: the notebook {url} does not load as JSON ({type(e).__name__}: {e})"]
    src = json.loads(source.read_text(encoding="utf-8"))
    prose = [cell_langs(c) for c in nb["cells"] if c["cell_type"] == "markdown" and cell_langs(c)]
    want = sum(1 for c in src["cells"] if c["cell_type"] == "markdown" and lang in cell_langs(c))
    code = sum(1 for c in nb["cells"] if c["cell_type"] == "code")
    want_code = sum(1 for c in src["cells"] if c["cell_type"] == "code")
    bad = []
    other = [p for p in prose if lang not in p]
    if other:
        bad.append(f"run box: the notebook holds {len(other)} prose cell(s) of another edition (expected only lang-{lang})")
    if len(prose) != want or not want:
        bad.append(f"run box: the notebook holds {len(prose)} lang-{lang} prose cells (expected {want}, as in {source.name})")
    if code != want_code:
        bad.append(f"run box: the notebook holds {code} code cells (expected {want_code}, as in {source.name})")
    return bad


def check_run_box(drv, rel: str, repo: str, root: Path = ROOT) -> list[str]:
    """Problems with the run box and repository links on the page ``rel`` open in ``drv``."""
    info = drv.execute_script(RUN_BOX_JS)
    m = CHAPTER.match(rel)
    bad = []
    repo = repo.rstrip("/")
    hosted = [h for h in info["links"] if any(f"//{host}" in h or f".{host}" in h for host in HOSTS)
              or (repo and h.startswith(repo))]
    if not repo:
        if hosted:
            bad.append(f"a repository/launch link with no repository address set: {hosted[:3]}")
        if info["repo_button"] or info["launch"]:
            bad.append(f"a repository or launch button with no repository address set: {info['repo_button'] + info['launch']}")
    if not m:
        if info["n"]:
            bad.append(f"run box on a page that is not a chapter ({info['n']})")
        return bad
    lang, name = m.groups()
    if info["n"] != 1:
        return bad + [f"run box: {info['n']} on the page (expected 1)"]
    title = TEXT[lang]["title"]
    if info["lang"] != lang or not info["title"].startswith(title):
        bad.append(f"run box: expected the {lang} box titled {title!r} (got {info['lang']}, {info['title'][:40]!r})")
    if info["open"] or not info["after_h1"]:
        bad.append(f"run box: expected closed, right under the title (open {info['open']}, after h1 {info['after_h1']})")
    if (lang == "ko") != _has_hangul(info["text"]):
        bad.append(f"run box: text not in the {lang} edition's language: {info['text'][:80]!r}")
    want = f"{name}.{lang}.ipynb"
    if len(info["notebook"]) != 1 or not info["notebook"][0].endswith(want):
        bad.append(f"run box: expected one link to {want} (got {info['notebook']})")
    else:
        if info["download"] != info["notebook"]:
            bad.append(f"download button: expected {info['notebook']} (got {info['download']})")
        bad += check_notebook(info["notebook"][0], lang, root / "chapters" / f"{name}.ipynb")
    if repo:
        if repo not in info["repo_links"]:
            bad.append(f"run box: no link to the repository {repo} (got {info['repo_links']})")
        if not info["repo_button"]:
            bad.append("no repository button with the repository address set")
        if not any("mybinder.org" in h and f"{name}.ipynb" in h for h in info["launch"]):
            bad.append(f"no Binder launch button for {name}.ipynb (got {info['launch']})")
    elif info["repo_links"]:
        bad.append(f"run box: repository links with no address set: {info['repo_links']}")
    return bad


def configured_repository(root: Path = ROOT) -> str:
    """``repository: url:`` of _config.yml ('' when empty or absent)."""
    import yaml
    cfg = yaml.safe_load((root / "_config.yml").read_text(encoding="utf-8")) or {}
    return str((cfg.get("repository") or {}).get("url") or "").strip()
