"""Write _build/_config.<lang>.yml = _config.yml + the edition's Sphinx settings.

Setting `language` through the config (not later, in an event) is what makes Sphinx and
sphinx-book-theme load their Korean UI strings. local_extensions paths are made absolute
because Jupyter Book 1 resolves them relative to the config file's folder."""
from __future__ import annotations

import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent


def write_config(lang: str, build_dir: Path | None = None, repository_url: str | None = None) -> Path:
    """Write build_dir/_config.<lang>.yml (build_dir: _build); ``repository_url`` replaces
    _config.yml's ``repository: url:`` (a test build: tools/build_book.py --repository-url)."""
    cfg = yaml.safe_load((ROOT / "_config.yml").read_text(encoding="utf-8"))
    sphinx = cfg.setdefault("sphinx", {})
    sphinx["local_extensions"] = {name: str((ROOT / p).resolve())
                                  for name, p in (sphinx.get("local_extensions") or {}).items()}
    conf = sphinx.setdefault("config", {}) or {}
    sphinx["config"] = conf
    conf["language"] = lang
    conf["bilingual_lang"] = lang
    if repository_url is not None:
        cfg["repository"] = dict(cfg.get("repository") or {}, url=repository_url)
    out = Path(build_dir or ROOT / "_build") / f"_config.{lang}.yml"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(yaml.safe_dump(cfg, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return out


if __name__ == "__main__":
    print(write_config(sys.argv[1]))
