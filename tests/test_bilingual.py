"""One source, two editions: Korean and English prose pair up, and the Korean follows the glossary."""
import re
import sys

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
    # one term per concept (see glossary.md)
    (re.compile(r"실행\s?평균"), "a running average is 이동 평균 (running statistics: 실행 통계)"),
    (re.compile(r"신경망"), "a network is 네트워크"),
    (re.compile(r"예제"), "a data example is 예시; an exercise is 연습 문제"),
    (re.compile(r"에포크"), "an epoch is 에폭 (glossary.md)"),
    (re.compile(r"(은닉|출력|입력)\s?단위|단위\s?(마다|하나|\d+\s?개|들)"),
     "a unit of a layer is 유닛; 단위 is for units of measurement"),
    (re.compile(r"일종의\s?규제"), "ε in a denominator is 수치 안정화, not 규제 (regularization)"),
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
    if re.search(r"\bslopes?\b", en_l) and "변화율" not in ko:
        problems.append("the English says slope; the Korean must say 변화율 (기울기 is the gradient)")
    return problems


@pytest.mark.parametrize("ko, en, bad", [
    ("드롭아웃 같은 정규화 기법", "regularizers such as dropout", True),
    ("배치 일반화를 적용한다", "we apply batch normalization", True),
    ("BN의 규제 효과", "the regularization effect of BN", False),
    ("BN의 정규화 효과", "the regularization effect of BN", True),
    ("배치 정규화는 일반화 성능도 높인다", "batch normalization also improves generalization", False),
    ("L2 정규화 항을 더한다", "we add an L2 penalty", True),
    ("PyTorch와 같은 실행 평균을 낸다", "gives the same running average as PyTorch", True),
    ("학습 중에 모아 둔 이동 평균(실행 통계)을 쓴다", "use the running average (running statistics)", False),
    ("학습된 신경망의 첫 층", "the first layer of the trained network", True),
    ("학습된 네트워크의 첫 층", "the first layer of the trained network", False),
    ("예제 하나짜리 배치", "a batch of one example", True),
    ("예시 하나짜리 배치", "a batch of one example", False),
    ("한 에포크 학습한다", "we train for one epoch", True),
    ("한 에폭 학습한다", "we train for one epoch", False),
    ("## 연습 문제", "## Exercises", False),
    ("처음 두 PCA 출력 단위에 걸린 손실", "a loss on the first two PCA output units", True),
    ("유닛마다 평균 0으로", "zero mean for each unit", False),
    ("단위마다 평균 0으로", "zero mean for each unit", True),
    ("은닉 단위 100개", "100 hidden units", True),
    ("단위만 바꿨을 뿐인데 스텝 수가 줄었다", "only the units changed, yet the step count fell", False),
    ("단위는 픽셀이고 0에서 28 사이", "measured in pixels, between 0 and 28", False),
    ("공분산이 단위 행렬이 된다", "the covariance becomes the identity matrix", False),
    ("유닛마다 맞춘 기울기는 −0.5 근처", "the slope fitted for each unit is near −0.5", True),
    ("유닛마다 맞춘 변화율은 −0.5 근처", "the slope fitted for each unit is near −0.5", False),
    ("역전파 기울기가 줄어든다", "backpropagated gradients shrink", False),
    ("작은 고윳값으로 나누지 않게 막는 일종의 규제", "stabilizes the division by tiny eigenvalues", True),
    ("작은 고윳값으로 나누지 않게 막는 수치 안정화", "stabilizes the division by tiny eigenvalues", False),
])
def test_glossary_checker_catches_known_mistranslations(ko, en, bad):
    assert bool(glossary_problems(ko, en)) == bad


def test_glossary_page_lists_the_settled_terms():
    rows = dict(re.findall(r"^\|\s*([^|]+?)\s*\|\s*([^|]+?)\s*\|\s*$", (ROOT / "glossary.md").read_text(encoding="utf-8"), re.M))
    for ko, en in [("유닛", "unit"), ("예시", "example"), ("연습 문제", "exercise"), ("네트워크", "network"),
                   ("이동 평균 (실행 통계)", "running average"), ("변화율", "slope"),
                   ("수치 안정화", "numerical stabilization"), ("배치", "batch")]:
        assert ko in rows and rows[ko].startswith(en), (ko, rows.get(ko))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_korean_prose_follows_the_glossary(path):
    found = []
    for ko, en in pairs(read_notebook(path)):
        found += [f"{p}\n    {cell_source(ko)[:90]!r}" for p in glossary_problems(cell_source(ko), cell_source(en))]
    assert not found, "\n".join(found)


# --- explicit labels: every heading, the same in both editions (the switch keeps the reader's place)
LABEL_NAME = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)*$")
PENDING_LABELS: set[str] = set()   # pages whose headings still lack labels (none)


def heading_labels(src: str, where: str) -> list[str]:
    """The label line right above each heading of a cell or page; fails on a heading without one."""
    lines, out = src.splitlines(), []
    for j, line in enumerate(lines):
        if HEADING.match(line):
            m = LABEL.match(lines[j - 1]) if j else None
            assert m, f"{where}: expected an explicit label line such as (chapter-topic)= above {line!r} (got none)"
            assert LABEL_NAME.match(m.group(1)), f"{where}: expected an ASCII label (a-z, 0-9, -) (got {m.group(1)!r})"
            out.append(m.group(1))
    return out


def book_heading_labels() -> dict[str, list[str]]:
    """{page: the labels of its headings} for every page of _toc.yml (Korean cells; twins agree)."""
    out = {}
    for f in toc_files():
        nb_path, md_path = (ROOT / f).with_suffix(".ipynb"), (ROOT / f).with_suffix(".md")
        if nb_path.is_file():
            cells = [c for c in read_notebook(nb_path)["cells"] if c["cell_type"] == "markdown"]
            out[f] = [lab for i, c in enumerate(cells) if lang(c) in ("ko", "en")
                      for lab in heading_labels(cell_source(c), f"{f} markdown cell {i}") if lang(c) == "ko"]
        elif md_path.name not in PENDING_LABELS:
            out[f] = heading_labels(md_path.read_text(encoding="utf-8"), md_path.name)
    return out


def test_every_heading_has_an_explicit_label_unique_in_the_book():
    labels = book_heading_labels()
    seen = {}
    for page, labs in labels.items():
        for lab in labs:
            assert lab not in seen, f"label {lab!r} of {page} is already used in {seen[lab]}: expected labels unique in the book"
            seen[lab] = page
        prefixes = {lab.split("-")[0] for lab in labs[1:]}    # the page title's label may differ
        assert len(prefixes) <= 1, f"{page}: expected every section label to start with the chapter's prefix (got {sorted(prefixes)})"


def test_heading_label_checker_rejects_a_heading_without_a_label():
    assert heading_labels("(data-cifar)=\n## CIFAR-10\n\ntext", "x") == ["data-cifar"]
    for bad in ("## CIFAR-10\n", "text\n## CIFAR-10\n", "(데이터)=\n## CIFAR-10\n"):
        with pytest.raises(AssertionError):
            heading_labels(bad, "x")


# --- exercise solutions: one folded 풀이 N / Solution N dropdown each (_ext/solutions.py) -----------
sys.path.insert(0, str(ROOT / "_ext"))
from solutions import mark_solutions, solution_number  # noqa: E402

FOLD_TAGS = {"hide-cell", "hide-input", "hide-output"}
WRAPPER = re.compile(r"\{dropdown\}|:class:\s*dropdown|\{admonition\}\s*(풀이|Solution)|^\*\*(풀이|Solution) \d+\.?\*\*", re.M)
FOLDED_TEXT = {"ko": "풀이는 아래에 접혀 있습니다.", "en": "The solutions are folded below."}
STALE_FOLD_TEXT = re.compile(r"접힌 셀|collapsed cell|hidden cell|folded cell", re.I)


def solution_problems(nb) -> list[str]:
    """What breaks the convention of _ext/solutions.py in one notebook (empty: none)."""
    cells, bad = nb["cells"], []
    numbers = [solution_number(c) for c in cells]
    runs = [(n, i) for i, n in enumerate(numbers) if n is not None and (i == 0 or numbers[i - 1] != n)]
    ex = next((i for i, c in enumerate(cells) if c["cell_type"] == "markdown"
               and re.search(r"^\([a-z0-9-]+-exercises\)=", cell_source(c), re.M)), None)
    if [n for n, _ in runs] != list(range(1, len(runs) + 1)):
        bad.append(f"expected solutions numbered 1..n in order, each in one run of consecutive cells (got {[n for n, _ in runs]})")
    if runs and (ex is None or runs[0][1] < ex):
        bad.append("expected every solution after its exercise, in the (…-exercises)= section (got one before it)")
    if ex is not None:
        items = len(re.findall(r"^\d+\. ", cell_source(cells[ex]), re.M))
        if items != len(runs):
            bad.append(f"expected one solution per exercise: {items} exercises (got {len(runs)} solutions)")
        for i in (ex, ex + 1):
            text = FOLDED_TEXT.get(lang(cells[i]) or "", "")
            if runs and text not in cell_source(cells[i]):
                bad.append(f"cell {i}: expected the exercises to say {text!r} (got none)")
    for i, c in enumerate(cells):
        src, n = cell_source(c), numbers[i]
        if FOLD_TAGS & set(cell_tags(c)):
            bad.append(f"cell {i}: a hide-cell/hide-input tag (expected the solution-N tag alone)")
        if c["cell_type"] == "markdown" and WRAPPER.search(src):
            bad.append(f"cell {i}: a dropdown wrapper or a '**풀이 N.**' title (expected the bare text, tagged solution-N)")
        if c["cell_type"] == "markdown" and STALE_FOLD_TEXT.search(src):
            bad.append(f"cell {i}: speaks of collapsed cells (expected 'the solutions are folded below')")
        if n is not None and c["cell_type"] == "markdown" and HEADING.search(src):
            bad.append(f"cell {i}: a heading inside solution {n}")
        if n is not None and lang(c) == "ko" and solution_number(cells[i + 1]) != n:
            bad.append(f"cell {i}: the lang-en twin of solution {n}'s text is not tagged solution-{n}")
    ends = [i for i, n in enumerate(numbers) if n is not None and (i + 1 == len(cells) or numbers[i + 1] != n)]
    for (n, start), prev_end in zip(runs[1:], ends):
        between = cells[prev_end + 1:start]
        if between and not any(f"연습 문제 {n}" in cell_source(c) for c in between):
            bad.append(f"cells {prev_end + 1}..{start - 1}: only exercise {n}'s stub may come between solutions "
                       f"{n - 1} and {n} (expected its prose to say '연습 문제 {n}')")
    return bad


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_solutions_are_tagged_solution_n_after_their_exercise(path):
    assert solution_problems(read_notebook(path)) == []


def _cell(kind, text="x", tags=()):
    return {"cell_type": kind, "metadata": {"tags": list(tags)}, "source": text}


def test_solution_checker_rejects_the_known_mistakes():
    ex = [_cell("markdown", "(a-exercises)=\n## 연습 문제\n\n1. a\n2. b\n\n풀이는 아래에 접혀 있습니다.", ["lang-ko"]),
          _cell("markdown", "(a-exercises)=\n## Exercises\n\n1. a\n2. b\n\nThe solutions are folded below.", ["lang-en"])]
    good = ex + [_cell("code", "1", ["solution-1"]), _cell("markdown", "풀이", ["lang-ko", "solution-2"]),
                 _cell("markdown", "text", ["lang-en", "solution-2"]), _cell("code", "2", ["solution-2"])]
    assert solution_problems({"cells": good}) == []
    mistakes = [good[:2] + good[3:] + [good[2]],                                     # numbered 2, 1
                good[:-1] + [_cell("code", "2", ["solution-2", "hide-cell"])],          # a hide tag
                good[:3] + [_cell("markdown", ":::{admonition} 풀이 2\n:class: dropdown\n풀이\n:::", ["lang-ko", "solution-2"])] + good[4:],
                good[:3] + [_cell("markdown", "풀이", ["lang-ko", "solution-2"]), _cell("markdown", "text", ["lang-en"])] + good[5:],
                good[:3] + [_cell("code", "stub")] + good[3:],                          # a cell between, not a stub
                good[:3],                                                             # one solution for two exercises
                [ex[0], _cell("markdown", "(a-exercises)=\n## Exercises\n\n1. a\n2. b", ["lang-en"])] + good[2:],
                good[:3] + [_cell("markdown", "풀이는 아래 접힌 셀에 있습니다.", ["lang-ko"]),
                            _cell("markdown", "In the collapsed cell below.", ["lang-en"])] + good[3:]]
    for nb in mistakes:
        assert solution_problems({"cells": nb}), [cell_source(c) for c in nb]
    with pytest.raises(ValueError, match="expected one solution-N tag"):
        solution_number(_cell("code", "x", ["solution-1", "solution-2"]))


def test_marker_cells_frame_each_solution():
    cells = [_cell("code", "a"), _cell("code", "1", ["solution-1"]), _cell("code", "2", ["solution-2"]),
             _cell("markdown", "t", ["solution-2"]), _cell("code", "b")]
    out = [cell_source(c) for c in mark_solutions({"cells": cells})["cells"]]
    assert out == ["a", "```{solution-start} 1\n```", "1", "```{solution-end}\n```", "```{solution-start} 2\n```",
                   "2", "t", "```{solution-end}\n```", "b"]
