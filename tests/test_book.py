"""The book's structure: every chapter is in _toc.yml, executed top to bottom, and tested."""
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tools.book import ROOT, cell_source, cell_tags, read_notebook, toc_files, toc_notebooks

NOTEBOOKS = toc_notebooks()
IDS = [p.stem for p in NOTEBOOKS]


def test_toc_entries_exist():
    for f in toc_files():
        assert (ROOT / f).with_suffix(".ipynb").is_file() or (ROOT / f).with_suffix(".md").is_file(), f


def test_every_chapter_notebook_is_in_the_toc_and_under_a_test_path():
    listed = set(NOTEBOOKS)
    on_disk = {p.resolve() for p in (ROOT / "chapters").rglob("*.ipynb")
               if ".ipynb_checkpoints" not in p.parts and not p.name.startswith("_")}
    assert on_disk - listed == set(), "notebooks in chapters/ missing from _toc.yml"
    for p in NOTEBOOKS:  # pyproject's testpaths: only notebooks under chapters/ are collected
        assert (ROOT / "chapters") in p.parents, f"{p} is outside chapters/, so nbval would not run it"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_stored_outputs_come_from_one_top_to_bottom_run(path):
    nb = read_notebook(path)
    assert nb["metadata"].get("kernelspec", {}).get("name") == "python3", "run tools/refresh_outputs.py"
    code = [c for c in nb["cells"] if c["cell_type"] == "code" and cell_source(c).strip()]
    counts = [c.get("execution_count") for c in code]
    assert None not in counts, "a code cell was never executed: nbval would compare nothing for it"
    assert counts == list(range(1, len(counts) + 1)), f"execution counts {counts} are not one fresh run"
    for c in code:
        errors = [o for o in c.get("outputs", []) if o["output_type"] == "error"]
        assert not errors or "raises-exception" in cell_tags(c), cell_source(c)[:80]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_chapter_starts_with_bnlib_setup(path):
    nb = read_notebook(path)
    first = next(c for c in nb["cells"] if c["cell_type"] == "code")
    assert re.search(r"^\s*(gen\s*=\s*)?bnlib\.setup\(", cell_source(first), re.M), "first code cell must call bnlib.setup()"


def test_ci_runs_exactly_the_readme_test_command():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    command = r"^python -m pytest(\s+#.*)?$"  # the exact command, an optional comment after it
    assert re.search(command, readme, re.M) and re.search(command, ci, re.M)
    assert "python tools/build_book.py" in readme and "python tools/build_book.py" in ci
    assert "python -m pip install -r requirements.txt" in readme


def test_a_changed_stored_output_fails_nbval(tmp_path):
    """The regression net works: edit one stored output of a real chapter and nbval fails."""
    src = ROOT / "chapters" / "preface.ipynb"
    nb = read_notebook(src)
    cell = next(c for c in nb["cells"] if c["cell_type"] == "code" and c.get("outputs"))
    stream = next(o for o in cell["outputs"] if o["output_type"] == "stream")
    stream["text"] = ["bnlib 9.9.9 | seed 0\n"]
    (tmp_path / "preface.ipynb").write_text(json.dumps(nb), encoding="utf-8")
    (tmp_path / "pytest.ini").write_text("[pytest]\n", encoding="utf-8")
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--nbval", "--nbval-current-env",
         f"--nbval-sanitize-with={ROOT / 'nbval_sanitize.cfg'}", "-c", str(tmp_path / "pytest.ini"),
         str(tmp_path / "preface.ipynb")],
        cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert run.returncode == 1, run.stdout[-2000:]
    assert "9.9.9" in run.stdout and "1 failed" in run.stdout


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_only_timing_cells_are_hidden_from_nbval(path):
    """nbval compares every output except timings (numbers within measured tolerances otherwise)."""
    for c in read_notebook(path)["cells"]:
        if c["cell_type"] == "code" and "nbval-ignore-output" in cell_tags(c):
            assert re.search(r"time|perf_counter|speed", cell_source(c)), cell_source(c)[:200]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_every_tolerance_rests_on_a_measurement(path):
    for c in read_notebook(path)["cells"]:
        spec = c.get("metadata", {}).get("tolerance")
        if spec is not None:
            assert set(spec) <= {"rtol", "atol", "basis"} and spec.get("basis", "").startswith("measured"), spec
            assert all(0 <= spec.get(k, 0) <= 1 for k in ("rtol",)), spec  # rtol above 1 would compare nothing


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_no_stored_output_is_a_warning(path):
    """A warning in the book is a bug to fix in the code (it also prints the clone's location)."""
    for c in read_notebook(path)["cells"]:
        for out in c.get("outputs", []):
            text = "".join(out.get("text", "")) if out.get("output_type") == "stream" else ""
            assert "Warning:" not in text, (cell_source(c)[:200], text[:300])
