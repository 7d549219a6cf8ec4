"""A printable PDF of each edition: _build/pdf/course-ko.pdf and _build/pdf/course-en.pdf.

    python tools/pdf_book.py              # both editions (about a minute)
    python tools/pdf_book.py --lang en    # one

Each edition is built as one HTML page (Jupyter Book's ``singlehtml`` builder, from the stored
outputs, warnings are errors) and printed by headless Chromium (Debian: chromium and
chromium-driver, driven by selenium, as tools/browser_check.py does; no browser download) once
MathJax has typeset every equation: A4, page numbers in the footer. _static/reader.css's print rules
wrap long code lines instead of cutting them and leave the interface out; every folded part
(exercise solutions, hide-cell code) is opened before printing. Hangul comes from the system's
fonts (Debian: fonts-nanum), embedded in the PDF by Chromium; the fonts are listed at the end
(with pdffonts, from poppler-utils, when it is installed); a Korean PDF without an embedded
Hangul font, or any font not embedded, is an error.
"""
from __future__ import annotations

import argparse
import base64
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "_ext"))
sys.path.insert(0, str(ROOT / "tools"))
from browser_check import WAIT_JS, make_driver, serve  # noqa: E402
from make_lang_config import write_config  # noqa: E402

OUT = ROOT / "_build" / "pdf"
FOOTER = ('<div style="font-size:8px; width:100%; text-align:center; color:#666;">'
          '<span class="pageNumber"></span> / <span class="totalPages"></span></div>')
PREPARE_JS = r"""
document.querySelectorAll('details').forEach(d => { d.open = true; });
document.querySelectorAll('details.run-box').forEach(d => d.remove());
return document.querySelectorAll('details').length;
"""


def build_single_page(lang: str) -> Path:
    """The edition as one HTML page (Jupyter Book's singlehtml builder)."""
    cfg = write_config(lang, OUT)
    cmd = ["jupyter-book", "build", str(ROOT), "--config", str(cfg), "--path-output", str(OUT / lang),
           "--builder", "singlehtml", "--all", "-n", "-W", "--keep-going"]
    run = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    if run.returncode:
        sys.stderr.write(run.stdout[-4000:] + run.stderr[-4000:])
        raise SystemExit(f"[pdf_book] {lang}: the singlehtml build failed (exit {run.returncode}); see above")
    return OUT / lang / "_build" / "singlehtml"


def print_pdf(folder: Path, dest: Path) -> int:
    """Print folder/intro.html (the whole edition) to ``dest``; returns the number of details opened."""
    srv, base = serve(folder)
    drv = make_driver(size=(1100, 1400))
    try:
        drv.set_script_timeout(300)
        drv.get(f"{base}/intro.html")
        state = drv.execute_async_script(WAIT_JS)
        if state != "ok":
            raise SystemExit(f"[pdf_book] {folder}: expected the page to load with its math typeset (got {state})")
        opened = drv.execute_script(PREPARE_JS)
        drv.execute_cdp_cmd("Emulation.setEmulatedMedia", {"media": "print"})
        time.sleep(1.0)                                   # layout after opening every fold
        pdf = drv.execute_cdp_cmd("Page.printToPDF", {
            "paperWidth": 8.27, "paperHeight": 11.69,     # A4, inches
            "marginTop": 0.6, "marginBottom": 0.6, "marginLeft": 0.55, "marginRight": 0.55,
            "printBackground": True, "displayHeaderFooter": True,
            "headerTemplate": "<span></span>", "footerTemplate": FOOTER})
    finally:
        drv.quit()
        srv.shutdown()
    dest.write_bytes(base64.b64decode(pdf["data"]))
    return opened


def fonts(pdf: Path) -> list[tuple[str, bool]]:
    """(font name, embedded) for each font in the PDF (pdffonts; [] when it is not installed)."""
    if not shutil.which("pdffonts"):
        return []
    out = subprocess.run(["pdffonts", str(pdf)], capture_output=True, text=True, check=True).stdout
    rows = []
    for line in out.splitlines()[2:]:
        parts = line.split()
        if len(parts) >= 5:
            emb = [p for p in parts if p in ("yes", "no")]
            rows.append((parts[0], bool(emb) and emb[0] == "yes"))
    return rows


HANGUL_FONT = re.compile(r"Nanum|Noto.*(CJK|KR)|UnDotum|UnBatang|Baekmuk|Malgun|Gothic", re.I)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lang", choices=["ko", "en"], action="append", help="edition(s) (default: both)")
    args = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    failed = []
    for lang in args.lang or ["ko", "en"]:
        t0 = time.time()
        folder = build_single_page(lang)
        t1 = time.time()
        dest = OUT / f"course-{lang}.pdf"
        opened = print_pdf(folder, dest)
        found = fonts(dest)
        hangul = [name for name, emb in found if emb and HANGUL_FONT.search(name)]
        print(f"[pdf_book] {lang}: {dest} ({dest.stat().st_size / 1e6:.1f} MB; build {t1 - t0:.0f} s, "
              f"print {time.time() - t1:.0f} s; {opened} folds opened)", flush=True)
        if found:
            names = sorted({n.split("+")[-1] for n, _ in found if n != "[none]"})
            print(f"[pdf_book] {lang}: {len(found)} fonts, {sum(e for _, e in found)} embedded: {', '.join(names)} "
                  f"and {sum(n == '[none]' for n, _ in found)} Type 3 (unnamed, embedded)")
            if lang == "ko" and not hangul:
                failed.append(f"{lang}: expected an embedded Hangul font (got {[n for n, _ in found]}); "
                              "install one (Debian: apt-get install fonts-nanum)")
            if not all(e for _, e in found):
                failed.append(f"{lang}: expected every font embedded (got {found})")
    for f in failed:
        print(f"[pdf_book] FAILED {f}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
