"""solutions — every exercise solution in one folded dropdown, titled 풀이 N / Solution N.

Notebook convention (tests/test_bilingual.py checks it; CONTRIBUTING.md, "Exercises and solutions"):
  * Every cell of solution N carries the tag ``solution-N``: its ``lang-ko`` / ``lang-en`` prose
    twins and its code cells (input and output), consecutive, right after exercise N (and after
    the exercise's visible stub, if the reader writes code). Solutions are numbered 1..n per chapter.
  * The prose carries no title and no ``{dropdown}``/``:class: dropdown`` wrapper, and the code cells
    no ``hide-cell``/``hide-input`` tag: the dropdown folds all of it, and its title comes from N and
    the edition (``풀이 N`` in Korean, ``Solution N`` in English).

How: in ``source-read`` (after _ext/bilingual.py dropped the other language's cells) a marker
cell ``{solution-start} N`` goes before each group and ``{solution-end}`` after it; a transform
then moves the rendered nodes between the two markers (paragraphs, math, code cells and their
outputs) into one ``solution`` node. HTML writes it as ``<details class="solution-dropdown">``
(closed, no JavaScript needed; _static/bilingual.css styles it in light and dark mode and opens it
for print, _static/reader.js opens it before printing); other builders get a container with a
rubric title. Without the marker cells nothing changes, so JupyterLab, Colab and nbval are unaffected.
"""
from __future__ import annotations

import html
import json
import re

from docutils import nodes
from sphinx.transforms import SphinxTransform
from sphinx.transforms.post_transforms import SphinxPostTransform
from sphinx.util import logging
from sphinx.util.docutils import SphinxDirective

logger = logging.getLogger(__name__)
TAG = re.compile(r"^solution-([1-9][0-9]*)$")
TITLE = {"ko": "풀이 {n}", "en": "Solution {n}"}


def solution_number(cell) -> int | None:
    """N of the cell's ``solution-N`` tag (None without one); two such tags are an error."""
    found = [int(m.group(1)) for t in cell.get("metadata", {}).get("tags", []) or [] if (m := TAG.match(t))]
    if len(found) > 1:
        raise ValueError(f"expected one solution-N tag on a cell (got {found})")
    return found[0] if found else None


def _marker(text: str, cell_id: str) -> dict:
    return {"cell_type": "markdown", "id": cell_id, "metadata": {}, "source": text}


def mark_solutions(nb: dict) -> dict:
    """Put a start marker before and an end marker after each run of cells of one solution."""
    out, current, k = [], None, 0
    for cell in nb.get("cells", []):
        n = solution_number(cell)
        if n != current:
            if current is not None:
                out.append(_marker("```{solution-end}\n```", f"solution-marker-{k}"))
                k += 1
            if n is not None:
                out.append(_marker(f"```{{solution-start}} {n}\n```", f"solution-marker-{k}"))
                k += 1
            current = n
        out.append(cell)
    if current is not None:
        out.append(_marker("```{solution-end}\n```", f"solution-marker-{k}"))
    nb["cells"] = out
    return nb


class solution(nodes.General, nodes.Element):
    """One folded solution; ``title`` holds its edition's title."""


class solution_marker(nodes.General, nodes.Element):
    """Start (``number`` set) or end of a solution, until the transform below wraps it."""


class SolutionStart(SphinxDirective):
    required_arguments = 1

    def run(self):
        return [solution_marker(number=int(self.arguments[0]))]


class SolutionEnd(SphinxDirective):
    def run(self):
        return [solution_marker(number=None)]


class WrapSolutions(SphinxTransform):
    """Move the siblings between a start and an end marker into one ``solution`` node."""
    default_priority = 200

    def apply(self, **kwargs):
        lang = getattr(self.config, "bilingual_lang", None) or (self.config.language or "en")[:2]
        fmt = TITLE.get(lang, TITLE["en"])
        for start in list(self.document.findall(solution_marker)):
            if start.parent is None or start["number"] is None:
                continue
            parent, n = start.parent, start["number"]
            i = parent.index(start)
            j = next((k for k in range(i + 1, len(parent))
                      if isinstance(parent[k], solution_marker)), None)
            if j is None or parent[j]["number"] is not None:
                logger.warning(f"solution {n}: expected its cells to end before a heading or another "
                               f"solution (got no end marker next to them)", location=start)
                continue
            box = solution(title=fmt.format(n=n), number=n, classes=["solution-dropdown"])
            box.extend(parent[i + 1:j])
            parent[i:j + 1] = [box]
        for stray in list(self.document.findall(solution_marker)):
            logger.warning("a solution marker without its pair", location=stray)
            stray.parent.remove(stray)


class SolutionsForOtherBuilders(SphinxPostTransform):
    """LaTeX, text, ...: the solution as a container with its title as a rubric (always shown)."""
    default_priority = 200

    def run(self, **kwargs):
        if self.app.builder.format == "html":
            return
        for node in list(self.document.findall(solution)):
            box = nodes.container("", nodes.rubric(text=node["title"]), *node.children, classes=["solution"])
            node.replace_self(box)


def visit_solution_html(self, node):
    self.body.append(f'<details class="solution-dropdown" data-solution="{node["number"]}">'
                     f'<summary class="solution-title">{html.escape(node["title"])}</summary>'
                     '<div class="solution-body">\n')


def depart_solution_html(self, node):
    self.body.append("</div></details>\n")


def _source_read(app, docname, source):
    if str(app.env.doc2path(docname)).endswith(".ipynb"):
        nb = json.loads(source[0])
        if any(solution_number(c) is not None for c in nb.get("cells", [])):
            source[0] = json.dumps(mark_solutions(nb), ensure_ascii=False)


def setup(app):
    app.add_node(solution, html=(visit_solution_html, depart_solution_html))
    app.add_node(solution_marker)
    app.add_directive("solution-start", SolutionStart)
    app.add_directive("solution-end", SolutionEnd)
    app.add_transform(WrapSolutions)
    app.add_post_transform(SolutionsForOtherBuilders)
    app.connect("source-read", _source_read, priority=600)   # after bilingual's (500)
    return {"parallel_read_safe": True, "parallel_write_safe": True, "version": "0.1"}
