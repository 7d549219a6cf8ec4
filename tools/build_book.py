"""Build both editions of the book from the notebooks' stored outputs.

    python tools/build_book.py            # -> _build/site/ko/, _build/site/en/, _build/site/index.html
    python tools/build_book.py --lang en  # one edition only
    python tools/build_book.py --build-dir /tmp/b --repository-url https://github.com/ORG/REPO
                                          # a test build elsewhere, as if the repository had that address

Warnings are errors (`-n -W --keep-going`) and every page is rebuilt (`--all`), so a broken
reference or a missing figure fails the build. Plain `jupyter-book build .` still works and
renders the Korean edition into _build/html.
"""
from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "_ext"))
from make_lang_config import write_config  # noqa: E402

# The site's root page: the reader picks an edition; the choice is remembered (localStorage, also
# set by the 한국어 | English switch on every page) and followed on the next visit. Without a
# stored choice the browser's languages decide: the first of them that is Korean or English,
# English when neither is listed (a German browser gets English). `index.html?choose` stays on
# the page. Without JavaScript the two links are all there is.
INDEX = """<!doctype html>
<html lang="ko">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>배치 정규화 강좌 · The Batch Normalization Course</title>
<link rel="icon" href="ko/_static/favicon.svg" type="image/svg+xml">
<script>
  (function () {
    var KEY = "course-reader-lang", LANGS = ["ko", "en"];
    function stored() { try { return localStorage.getItem(KEY); } catch (e) { return null; } }
    function fromBrowser() {
      var prefs = navigator.languages && navigator.languages.length ? navigator.languages : [navigator.language || ""];
      for (var i = 0; i < prefs.length; i++) {
        var primary = String(prefs[i]).toLowerCase().split("-")[0];
        if (LANGS.indexOf(primary) >= 0) return primary;
      }
      return "en";
    }
    var s = stored(), lang = LANGS.indexOf(s) >= 0 ? s : fromBrowser();
    window.COURSE_EDITION = lang;   // read by tools/browser_check.py
    document.documentElement.setAttribute("data-edition", lang);
    if (!/[?&]choose\\b/.test(location.search)) location.replace(lang + "/index.html");
    document.addEventListener("click", function (ev) {
      var a = ev.target.closest && ev.target.closest("a[data-edition]");
      if (a) { try { localStorage.setItem(KEY, a.getAttribute("data-edition")); } catch (e) {} }
    });
  })();
</script>
<style>
  body { margin: 0; min-height: 100vh; display: flex; align-items: center; justify-content: center;
         font-family: system-ui, -apple-system, "Segoe UI", "Noto Sans KR", "Apple SD Gothic Neo", sans-serif;
         color: #222; background: #fff; }
  main { max-width: 36rem; padding: 2rem 1.5rem; text-align: center; }
  h1 { font-size: 1.6rem; line-height: 1.35; margin: 0 0 1.5rem; }
  h1 span { display: block; }
  .editions { display: flex; gap: 1rem; justify-content: center; flex-wrap: wrap; }
  .editions a { display: block; min-width: 11rem; padding: 0.9rem 1.2rem; border: 2px solid #1f4e8c;
                border-radius: 8px; color: #1f4e8c; text-decoration: none; font-size: 1.15rem; }
  .editions a:hover, .editions a:focus { background: #1f4e8c; color: #fff; }
  html[data-edition="ko"] a[data-edition="ko"], html[data-edition="en"] a[data-edition="en"] { font-weight: 700; }
  .editions small { display: block; font-size: 0.85rem; margin-top: 0.2rem; opacity: 0.8; }
  @media (prefers-color-scheme: dark) { body { background: #121212; color: #ddd; }
    .editions a { color: #9cc3f0; border-color: #9cc3f0; }
    .editions a:hover, .editions a:focus { background: #9cc3f0; color: #121212; } }
</style>
</head>
<body>
<main>
  <h1><span lang="ko">배치 정규화 강좌</span><span lang="en">The Batch Normalization Course</span></h1>
  <p class="editions">
    <a href="ko/index.html" data-edition="ko" lang="ko">한국어판<small>한국어로 읽기</small></a>
    <a href="en/index.html" data-edition="en" lang="en">English edition<small>Read in English</small></a>
  </p>
</main>
</body>
</html>
"""


def build(lang: str, site: Path, build_dir: Path | None = None, repository_url: str | None = None) -> int:
    build_dir = Path(build_dir or ROOT / "_build")
    cfg = write_config(lang, build_dir, repository_url)
    cmd = ["jupyter-book", "build", str(ROOT), "--config", str(cfg),
           "--path-output", str(build_dir / lang), "--all", "-n", "-W", "--keep-going"]
    t0 = time.time()
    rc = subprocess.call(cmd, cwd=ROOT)
    print(f"[build_book] {lang}: exit {rc} in {time.time() - t0:.1f} s", flush=True)
    if rc == 0:
        out = site / lang
        shutil.rmtree(out, ignore_errors=True)
        shutil.copytree(build_dir / lang / "_build" / "html", out)
    return rc



def write_favicon_ico(path: Path) -> None:
    """A 32x32 favicon.ico at the site root (the pages link _static/favicon.svg; a redirect can leave
    before the browser reads that link, and it then asks for /favicon.ico)."""
    from PIL import Image, ImageDraw

    img = Image.new("RGBA", (32, 32), (0, 0, 0, 0))
    ImageDraw.Draw(img).ellipse((2, 2, 29, 29), fill=(37, 99, 235, 255))
    img.save(path, format="ICO", sizes=[(32, 32)])

def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lang", choices=["ko", "en"], action="append", help="edition(s) to build (default: both)")
    parser.add_argument("--build-dir", type=Path, default=ROOT / "_build", help="where to build (default: _build)")
    parser.add_argument("--repository-url", help="use this repository address instead of _config.yml's (a test build)")
    args = parser.parse_args()
    site = args.build_dir.resolve() / "site"
    site.mkdir(parents=True, exist_ok=True)
    rcs = [build(lang, site, args.build_dir.resolve(), args.repository_url) for lang in (args.lang or ["ko", "en"])]
    (site / "index.html").write_text(INDEX, encoding="utf-8")
    write_favicon_ico(site / "favicon.ico")  # browsers ask for /favicon.ico when the root page redirects at once
    if any(rcs):
        print("[build_book] FAILED: see the warnings above", file=sys.stderr)
        return 1
    print(f"[build_book] open {site / 'index.html'} (or {site / 'ko' / 'index.html'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
