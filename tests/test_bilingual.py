"""One source, two editions: Korean and English prose pair up, and the Korean follows the glossary."""
import re

import pytest

from tools.book import ROOT, cell_source, cell_tags, read_notebook, toc_files, toc_notebooks

NOTEBOOKS = toc_notebooks()
IDS = [p.stem for p in NOTEBOOKS]
HANGUL = re.compile(r"[\uac00-\ud7a3]")
LABEL = re.compile(r"^\(([^()]+)\)=\s*$", re.M)
HEADING = re.compile(r"^(#{1,6})\s", re.M)
GLUE = re.compile(r"\{glue(?::\w+)?\}`([^`:]+)")
REFS = re.compile(r"\{(?:ref|doc|numref|eq)\}`([^`]+)`")


def lang(cell):
    tags = [t for t in cell_tags(cell) if t in ("lang-ko", "lang-en")]
    return tags[0][5:] if len(tags) == 1 else ("both" if tags else None)


def structure(src):
    """What must agree between twins: labels, heading levels, glue keys, cross-references, display math."""
    refs = [r.split("<")[-1].rstrip(">") for r in REFS.findall(src)]
    return {"labels": LABEL.findall(src), "headings": [len(h) for h in HEADING.findall(src)],
            "glue": GLUE.findall(src), "refs": refs, "math": src.count("$$")}


def pairs(nb):
    """[(ko_cell, en_cell)]; raises AssertionError on any unpaired prose cell."""
    cells = nb["cells"]
    out = []
    for i, cell in enumerate(cells):
        if cell["cell_type"] != "markdown":
            continue
        which = lang(cell)
        src = cell_source(cell)
        if which is None:
            assert not HANGUL.search(src), f"cell {i}: Korean prose without a lang-ko tag:\n{src[:120]}"
            assert not HEADING.search(src), f"cell {i}: a heading in a shared cell (write one per language):\n{src[:120]}"
        elif which == "both":
            raise AssertionError(f"cell {i}: tagged both lang-ko and lang-en")
        elif which == "ko":
            nxt = cells[i + 1] if i + 1 < len(cells) else None
            assert nxt is not None and nxt["cell_type"] == "markdown" and lang(nxt) == "en", \
                f"cell {i}: a lang-ko cell must be followed by its lang-en twin:\n{src[:120]}"
            out.append((cell, nxt))
        else:
            prev = cells[i - 1] if i > 0 else None
            assert prev is not None and lang(prev) == "ko", f"cell {i}: a lang-en cell without a lang-ko twin before it"
            assert not HANGUL.search(src.replace("한국어", "")), f"cell {i}: Hangul in an English cell:\n{src[:120]}"
    return out


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_korean_and_english_prose_pair_up(path):
    for ko, en in pairs(read_notebook(path)):
        a, b = structure(cell_source(ko)), structure(cell_source(en))
        assert a == b, f"twins differ in structure {a} vs {b}:\n{cell_source(ko)[:100]}\n---\n{cell_source(en)[:100]}"
        assert HANGUL.search(cell_source(ko)), f"a lang-ko cell without Korean:\n{cell_source(ko)[:100]}"


def test_markdown_pages_have_both_languages():
    for f in toc_files():
        page = (ROOT / f).with_suffix(".md")
        if page.is_file():
            text = page.read_text(encoding="utf-8")
            assert text.count("::::{lang} ko") == text.count("::::{lang} en") >= 1, page


# --- glossary: 정규화 = normalization, 규제 = regularization, 일반화 = generalization -------------
BANNED = [  # known mistranslations in Korean text
    (re.compile(r"(배치|층|레이어|그룹|인스턴스|가중치)\s?일반화"), "일반화 means generalization: normalization is 정규화"),
    (re.compile(r"정규화\s?(항|기법으로서의 드롭아웃|계수 λ)"), "a regularization term/coefficient is 규제 항/규제 계수"),
    (re.compile(r"(드롭아웃|가중치 감쇠|L2|L1)\s?정규화(?!\s?층)"), "dropout / weight decay / L1 / L2 penalties are 규제"),
    (re.compile(r"정칙화|레귤러라이제이션|노멀라이제이션"), "use the glossary terms 규제 / 정규화"),
]


def glossary_problems(ko: str, en: str) -> list[str]:
    problems = [f"{why}: {m.group(0)!r}" for rx, why in BANNED for m in rx.finditer(ko)]
    en_l = en.lower()
    if "regulariz" in en_l and "규제" not in ko:
        problems.append("the English says regularization; the Korean must say 규제")
    if "정규화" in ko and not re.search(r"normaliz|\bnorm\b|\bbn\b|\bln\b|\bgn\b|\bwn\b", en_l):
        problems.append("정규화 appears where the English does not speak of normalization")
    if "일반화" in ko and "generaliz" not in en_l:
        problems.append("일반화 appears where the English does not speak of generalization")
    return problems


@pytest.mark.parametrize("ko, en, bad", [
    ("드롭아웃 같은 정규화 기법", "regularizers such as dropout", True),
    ("배치 일반화를 적용한다", "we apply batch normalization", True),
    ("BN의 규제 효과", "the regularization effect of BN", False),
    ("BN의 정규화 효과", "the regularization effect of BN", True),
    ("배치 정규화는 일반화 성능도 높인다", "batch normalization also improves generalization", False),
    ("L2 정규화 항을 더한다", "we add an L2 penalty", True),
])
def test_glossary_checker_catches_known_mistranslations(ko, en, bad):
    assert bool(glossary_problems(ko, en)) == bad


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_korean_prose_follows_the_glossary(path):
    found = []
    for ko, en in pairs(read_notebook(path)):
        found += [f"{p}\n    {cell_source(ko)[:90]!r}" for p in glossary_problems(cell_source(ko), cell_source(en))]
    assert not found, "\n".join(found)
