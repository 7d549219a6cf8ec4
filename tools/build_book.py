"""Build both editions of the book from the notebooks' stored outputs.

    python tools/build_book.py            # -> _build/site/ko/, _build/site/en/, _build/site/index.html
    python tools/build_book.py --lang en  # one edition only

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

INDEX = """<!doctype html><meta charset="utf-8"><title>배치 정규화 강좌 · The Batch Normalization Course</title>
<script>
  var l = null; try { l = localStorage.getItem("course-reader-lang"); } catch (e) {}
  if (l !== "ko" && l !== "en") l = (navigator.language || "").slice(0, 2) === "en" ? "en" : "ko";
  location.replace(l + "/index.html");
</script>
<noscript><a href="ko/index.html">한국어</a> · <a href="en/index.html">English</a></noscript>
"""


def build(lang: str, site: Path) -> int:
    cfg = write_config(lang)
    cmd = ["jupyter-book", "build", str(ROOT), "--config", str(cfg),
           "--path-output", str(ROOT / "_build" / lang), "--all", "-n", "-W", "--keep-going"]
    t0 = time.time()
    rc = subprocess.call(cmd, cwd=ROOT)
    print(f"[build_book] {lang}: exit {rc} in {time.time() - t0:.1f} s", flush=True)
    if rc == 0:
        out = site / lang
        shutil.rmtree(out, ignore_errors=True)
        shutil.copytree(ROOT / "_build" / lang / "_build" / "html", out)
    return rc


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lang", choices=["ko", "en"], action="append", help="edition(s) to build (default: both)")
    args = parser.parse_args()
    site = ROOT / "_build" / "site"
    site.mkdir(parents=True, exist_ok=True)
    rcs = [build(lang, site) for lang in (args.lang or ["ko", "en"])]
    (site / "index.html").write_text(INDEX, encoding="utf-8")
    if any(rcs):
        print("[build_book] FAILED: see the warnings above", file=sys.stderr)
        return 1
    print(f"[build_book] open {site / 'index.html'} (or {site / 'ko' / 'index.html'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
