"""run_box — "Run this chapter" on every chapter page, and this edition's notebook to download.

* Every chapter page (a notebook under ``chapters/``) gets a folded box under its title, in the
  edition's language: how to get the code and ``bnlib``, the README's commands for this chapter
  (install, open it in JupyterLab, run it under nbval), where the data comes from, and a link to
  this edition's notebook (``_notebooks/chapters/NAME.<lang>.ipynb``: the chapter with only this
  edition's prose, written by _ext/edition_notebook.py at build time). The page's download button
  (.ipynb) gives that notebook too; the bilingual source stays in the repository.
* One setting decides every link to the repository: ``repository: url:`` in _config.yml (Jupyter
  Book passes it on as the theme option ``repository_url``). Empty (there is no public address
  yet): no repository link, no clone command with an address, no repository or launch button.
  Set: the box names it (``git clone URL``, the source notebook), and the theme's repository button
  and a Binder launch button appear (Colab is left out: it would lack ``bnlib``).
* Only the ``html`` builder gets the box and the notebooks (the print build, tools/pdf_book.py,
  uses ``singlehtml``); the box is left out of print by _static/reader.css.
"""
from __future__ import annotations

import html
import posixpath
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from edition_notebook import write_edition  # noqa: E402

NOTEBOOK_DIR = "_notebooks"
BINDERHUB = "https://mybinder.org"          # the public BinderHub, used only with a repository address

TEXT = {
    "ko": {
        "title": "이 장 실행하기",
        "hint": "코드와 bnlib 받기 · 명령 · 노트북 내려받기",
        "code": "<strong>코드와 <code>bnlib</code></strong>: 이 장은 강좌 저장소의 <code>{src}</code> 입니다. "
                "<code>bnlib</code> 은 같은 저장소의 <code>bnlib/</code> 폴더에 있는 이 강좌의 작은 라이브러리이고, "
                "아래 설치 명령이 편집 가능 모드(<code>-e .</code>)로 함께 설치합니다.",
        "repo": "저장소: {link}. 받기:",
        "norepo": "저장소의 공개 주소는 아직 없습니다. 저장소 사본(<code>chapters/</code>, <code>bnlib/</code>, "
                  "<code>requirements.txt</code> 가 있는 폴더)의 루트에서 실행합니다.",
        "commands": "<strong>명령</strong> (파이썬 3.11, 리눅스, 저장소 루트에서; 저장소의 README.md와 같습니다):",
        "c_install": "설치 (torch, nbval, bnlib 등)",
        "c_lab": "열어서 한 셀씩 실행",
        "c_test": "처음부터 끝까지 실행해 이 책의 출력과 비교",
        "data": "<strong>데이터</strong>: 인터넷이 되면 처음 실행할 때 내려받습니다. 인터넷이 없는 기계에서 데이터를 "
                "놓는 법은 README.md의 ‘데이터’ 절에 있습니다.",
        "download": "<strong>이 판의 노트북</strong>: {link} (한국어 설명, 코드, 이 책과 같은 저장된 출력). "
                    "두 언어가 함께 든 원본은 저장소의 <code>{src}</code> 입니다{source}. "
                    "내려받은 노트북은 <code>bnlib</code> 이 설치된 환경에서 실행됩니다.",
        "source": " ({link})",
        "source_text": "저장소에서 보기",
        "launch": "<strong>브라우저에서 실행</strong>: 쪽 위의 로켓 단추가 이 장을 Binder에서 엽니다(두 언어 원본).",
        "tooltip": "이 판의 노트북 내려받기 (한국어)",
    },
    "en": {
        "title": "Run this chapter",
        "hint": "get the code and bnlib · commands · download the notebook",
        "code": "<strong>The code and <code>bnlib</code></strong>: this chapter is <code>{src}</code> in the "
                "course repository. <code>bnlib</code> is the course's small library, in the same repository's "
                "<code>bnlib/</code> folder; the install command below installs it too, editable (<code>-e .</code>).",
        "repo": "Repository: {link}. Get it:",
        "norepo": "The repository has no public address yet. Run the commands from the root of a copy of it "
                  "(the folder that holds <code>chapters/</code>, <code>bnlib/</code> and <code>requirements.txt</code>).",
        "commands": "<strong>Commands</strong> (Python 3.11 on Linux, from the repository root; as in the "
                    "repository's README.md):",
        "c_install": "set up (torch, nbval, bnlib, ...)",
        "c_lab": "open it and run it cell by cell",
        "c_test": "run it top to bottom and compare with this book's outputs",
        "data": "<strong>Data</strong>: downloaded on the first run when online. The \u201cData\u201d section of "
                "README.md says where to put it on a machine without internet.",
        "download": "<strong>This edition's notebook</strong>: {link} (the English prose, the code and the same "
                    "stored outputs as this book). The bilingual source is <code>{src}</code> in the "
                    "repository{source}. The downloaded notebook runs where <code>bnlib</code> is installed.",
        "source": " ({link})",
        "source_text": "view it there",
        "launch": "<strong>Run it in the browser</strong>: the rocket button at the top of the page opens this "
                  "chapter on Binder (the bilingual source).",
        "tooltip": "Download this edition's notebook (English)",
    },
}


def repository_url(config) -> str:
    """The repository's address from _config.yml (``repository: url:``), '' when unset."""
    return str((config.html_theme_options or {}).get("repository_url") or "").strip().rstrip("/")


def is_chapter(app, docname: str) -> bool:
    return docname.startswith("chapters/") and str(app.env.doc2path(docname)).endswith(".ipynb")


def notebook_name(docname: str, lang: str) -> str:
    """The edition notebook's path in the built site, e.g. ``_notebooks/chapters/data.ko.ipynb``."""
    return f"{NOTEBOOK_DIR}/{docname}.{lang}.ipynb"


def _link(href: str, text: str, **attrs) -> str:
    extra = "".join(f' {k.replace("_", "-")}="{html.escape(v)}"' for k, v in attrs.items())
    return f'<a class="reference external" href="{html.escape(href)}"{extra}>{text}</a>'


def source_url(repo: str, branch: str, path: str) -> str | None:
    """The source notebook on the repository's web page (GitHub/GitLab layout), else None."""
    if any(host in repo for host in ("github.com", "gitlab.com")):
        return f"{repo}/blob/{branch or 'main'}/{path}"
    return None


def box_html(lang: str, docname: str, notebook_href: str, repo: str = "", branch: str = "main") -> str:
    """The box's HTML for chapter ``docname`` of edition ``lang`` (links only to what exists)."""
    t = TEXT[lang]
    src = f"{docname}.ipynb"
    nb_file = posixpath.basename(notebook_href)
    parts = [f'<li>{t["code"].format(src=html.escape(src))}']
    if repo:
        parts.append(f'<br>{t["repo"].format(link=_link(repo, html.escape(repo), data_run_box="repository"))}'
                     f'<pre class="run-box-code">git clone {html.escape(repo)}</pre>')
    else:
        parts.append(f'<br>{t["norepo"]}')
    parts.append("</li>")
    rows = [("python -m pip install -r requirements.txt", t["c_install"]),
            (f"jupyter lab {src}", t["c_lab"]),
            (f"python -m pytest {src}", t["c_test"])]
    width = max(len(c) for c, _ in rows) + 2
    cmds = "\n".join(f"{html.escape(c.ljust(width))}<span class=\"run-box-comment\"># {html.escape(w)}</span>"
                     for c, w in rows)
    parts.append(f'<li>{t["commands"]}<pre class="run-box-code">{cmds}</pre></li>')
    parts.append(f'<li>{t["data"]}</li>')
    view = source_url(repo, branch, src) if repo else None
    source = t["source"].format(link=_link(view, t["source_text"], data_run_box="source")) if view else ""
    dl = _link(notebook_href, f"<code>{html.escape(nb_file)}</code>", download=nb_file, data_run_box="notebook")
    parts.append(f'<li>{t["download"].format(link=dl, src=html.escape(src), source=source)}</li>')
    if repo:
        parts.append(f'<li>{t["launch"]}</li>')
    return (f'<details class="run-box" data-run-box-lang="{lang}">'
            f'<summary class="run-box-title"><span class="run-box-name">{t["title"]}</span>'
            f'<span class="run-box-hint">{html.escape(t["hint"])}</span></summary>'
            f'<ol class="run-box-body">{"".join(parts)}</ol></details>\n')


def _config_inited(app, config):
    """With a repository address: the theme's repository button and a Binder launch button."""
    opts = dict(config.html_theme_options or {})
    repo = repository_url(config)
    launch = dict(opts.get("launch_buttons") or {})
    for key in ("binderhub_url", "jupyterhub_url", "colab_url", "deepnote_url", "jupyterlite_url"):
        launch[key] = ""
    launch["thebe"] = False
    if repo:
        launch.update(binderhub_url=BINDERHUB, notebook_interface="jupyterlab")
        opts["repository_url"] = repo
        opts.setdefault("repository_branch", "main")
    opts["launch_buttons"] = launch
    opts["use_repository_button"] = bool(repo)
    config.html_theme_options = opts


def _page_context(app, pagename, templatename, context, doctree):
    if app.builder.name != "html" or doctree is None or not is_chapter(app, pagename):
        return
    lang = app.config.bilingual_lang
    rel = notebook_name(pagename, lang)
    write_edition(Path(app.env.doc2path(pagename)), lang, Path(app.outdir) / rel)
    href = posixpath.relpath(rel, posixpath.dirname(pagename) or ".")
    opts = app.config.html_theme_options or {}
    box = box_html(lang, pagename, href, repository_url(app.config), str(opts.get("repository_branch") or "main"))
    body = context.get("body", "")
    end = body.find("</h1>")
    context["body"] = body[:end + 5] + "\n" + box + body[end + 5:] if end >= 0 else box + body
    for group in context.get("header_buttons", []):          # the download button: this edition's notebook
        for button in group.get("buttons", []) if group.get("label") == "download-buttons" else []:
            if button.get("label") == "download-source-button":
                button["url"] = href
                button["tooltip"] = TEXT[lang]["tooltip"]


def setup(app):
    app.connect("config-inited", _config_inited)
    app.connect("html-page-context", _page_context, priority=600)   # after the theme's buttons (501)
    return {"parallel_read_safe": True, "parallel_write_safe": True, "version": "0.1"}
