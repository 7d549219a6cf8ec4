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
