"""Small helpers shared by conftest.py, the tests and the tools: the table of contents and
the notebooks it lists."""
from __future__ import annotations

import json
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent


def toc_files(root: Path = ROOT) -> list[str]:
    """Every `file:` entry of _toc.yml (root first), in order, without extension."""
    toc = yaml.safe_load((root / "_toc.yml").read_text(encoding="utf-8"))
    out = [toc["root"]]

    def walk(node):
        if isinstance(node, dict):
            if "file" in node:
                out.append(node["file"])
            for key in ("chapters", "sections", "parts"):
                for child in node.get(key, []) or []:
                    walk(child)
        elif isinstance(node, list):
            for child in node:
                walk(child)

    walk({k: v for k, v in toc.items() if k in ("chapters", "parts")})
    return out


def toc_notebooks(root: Path = ROOT) -> list[Path]:
    """The .ipynb files the table of contents lists (resolved paths)."""
    return [(root / f).with_suffix(".ipynb").resolve() for f in toc_files(root)
            if (root / f).with_suffix(".ipynb").is_file()]


def read_notebook(path: Path) -> dict:
    return json.loads(Path(path).read_text(encoding="utf-8"))


def cell_source(cell: dict) -> str:
    s = cell.get("source", "")
    return "".join(s) if isinstance(s, list) else s


def cell_tags(cell: dict) -> list[str]:
    return list(cell.get("metadata", {}).get("tags", []) or [])
