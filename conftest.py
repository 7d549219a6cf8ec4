"""pytest configuration for `python -m pytest`: bnlib's tests plus nbval on the chapters.

- Only notebooks listed in _toc.yml are collected (tests/test_book.py checks that every
  listed notebook lives under a test path and carries stored outputs).
- Kernels see the environment the stored outputs were made in: progress bars off, a fixed
  hash seed, the offline data folder ../shared/data when BNLIB_DATA is not set, and the numeric
  environment named by BNLIB_NUMERICS (tools/kernel_env.py; "native" unless set; CI runs the
  chapters a second time with BNLIB_NUMERICS=perturbed).
- nbval compares floating-point numbers within each cell's measured tolerance
  (tools/nbval_numeric.py) and everything else exactly.
- The terminal summary prints each chapter's execution time.
"""
from __future__ import annotations

import os
import sys
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT))
from tools import kernel_env  # noqa: E402
from tools.book import toc_notebooks  # noqa: E402

kernel_env.apply(ROOT)  # before any kernel starts: they inherit it

pytest_plugins = ["tools.nbval_numeric"]

_IN_TOC = set(toc_notebooks(ROOT))
_chapter_seconds: dict[str, float] = defaultdict(float)


def pytest_report_header(config):
    return [f"bnlib data: BNLIB_DATA={os.environ.get('BNLIB_DATA', '<unset>')}",
            f"chapters from _toc.yml: {len(_IN_TOC)}",
            f"numerics: BNLIB_NUMERICS={os.environ.get('BNLIB_NUMERICS') or 'native'} "
            f"{kernel_env.numerics()}"]


def pytest_ignore_collect(collection_path, config):
    if collection_path.suffix == ".ipynb":
        return collection_path.resolve() not in _IN_TOC
    return None


def pytest_collection_modifyitems(session, config, items):
    # nbval waits at most 5 s per output message after a cell finishes (nbval #136/#231);
    # a loaded 2-core machine can exceed that.
    for item in items:
        if hasattr(item, "output_timeout"):
            item.output_timeout = 60


def pytest_runtest_logreport(report):
    path = report.nodeid.split("::")[0]
    if path.endswith(".ipynb"):
        _chapter_seconds[path] += report.duration


def pytest_terminal_summary(terminalreporter):
    if not _chapter_seconds:
        return
    numerics = os.environ.get("BNLIB_NUMERICS") or "native"
    terminalreporter.section(f"chapter execution time (numerics: {numerics})")
    for path, seconds in sorted(_chapter_seconds.items()):
        terminalreporter.write_line(f"{seconds:7.1f} s  {path}")
    terminalreporter.write_line(f"{sum(_chapter_seconds.values()):7.1f} s  total")
