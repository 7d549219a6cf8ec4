"""The numeric output comparison that nbval uses here (tools/nbval_numeric.py)."""
import json
import math
import subprocess
import sys

import pytest

from tools.book import ROOT
from tools.nbval_numeric import Tolerance, compare_text, last_digit, split_numbers
from tools.numeric_spread import nice_ceil, suggest

EXACT = Tolerance()


def test_floats_are_found_but_not_inside_words_or_integers():
    parts, numbers = split_numbers("float32 v1.2 lr=0.1, [1. 2.5] 1e-05 step 300 end 0.5. 정확도 0.88로 -3.5 "
                                   "grew 2.005x 0.5xyz")
    assert numbers == ["0.1", "1.", "2.5", "1e-05", "0.5", "0.88", "-3.5", "2.005"]
    assert "float32 v1.2 lr=" == parts[0] and "300" in "".join(parts)


@pytest.mark.parametrize("text, unit", [("0.881", 1e-3), ("8.9e-16", 1e-17), ("3.", 1.0),
                                        ("-12.50", 1e-2), ("1e-05", 1e-5), ("2.5E+03", 100.0)])
def test_last_printed_digit(text, unit):
    assert math.isclose(last_digit(text), unit)


def test_a_rounding_flip_in_the_last_digit_passes_and_two_units_fail():
    assert compare_text("acc 0.8277", "acc 0.8276", EXACT) is None
    why = compare_text("acc 0.8277", "acc 0.8237", EXACT)
    assert why and "0.8277" in why and "0.8237" in why and "allowed 0.0001" in why


def test_a_number_outside_its_tolerance_fails_and_the_report_shows_both_and_the_tolerance():
    tol = Tolerance(rtol=0.05)
    assert compare_text("relu Xavier 0.881", "relu Xavier 0.925", tol) is None   # 5.0 %
    why = compare_text("relu Xavier 0.881", "relu Xavier 0.935", tol)            # 6.1 %
    assert why and "stored 0.881" in why and "new 0.935" in why and "rtol 0.05" in why
    assert compare_text("cos 0.001", "cos -0.004", Tolerance(atol=0.01)) is None
    assert compare_text("cos 0.001", "cos -0.04", Tolerance(atol=0.01))


def test_a_changed_word_or_integer_fails_whatever_the_tolerance():
    loose = Tolerance(rtol=10, atol=10)
    assert "text differs" in compare_text("BN 0.5 wins", "BN 0.5 loses", loose)
    assert "text differs" in compare_text("9/9 pairs: 0.5", "8/9 pairs: 0.5", loose)
    assert "text differs" in compare_text("shape (64, 3)", "shape (64, 4)", loose)
    assert "text differs" in compare_text("a 0.5\nb 0.6", "a 0.5 b 0.6", loose)  # line layout


def test_an_extra_or_a_missing_number_fails():
    loose = Tolerance(rtol=10, atol=10)
    assert "2 floating-point numbers, the new one 3" in compare_text("[0.1 0.2]", "[0.1 0.2 0.3]", loose)
    assert "2 floating-point numbers, the new one 1" in compare_text("[0.1 0.2]", "[0.1]", loose)


def test_padding_that_a_wider_number_changes_is_layout_not_text():
    assert compare_text("| 9.99 | x", "| 10.01 | x", Tolerance(atol=0.05)) is None
    assert compare_text("gap   0.012 end", "gap  -0.013 end", Tolerance(atol=0.03)) is None


def test_nan_and_inf_compare_sensibly():
    assert compare_text("loss nan", "loss nan", EXACT) is None
    assert compare_text("loss nan", "loss 2.3", Tolerance(atol=1e9))
    assert compare_text("loss 2.3", "loss nan", Tolerance(atol=1e9))
    assert compare_text("beta inf", "beta inf", EXACT) is None
    assert compare_text("beta inf", "beta -inf", Tolerance(atol=1e9))
    assert compare_text("beta 1e300", "beta inf", Tolerance(rtol=0.5))


def test_the_clones_location_in_a_warning_is_not_a_difference():
    stored = "/work/main/bnlib/utils.py:97: UserWarning: x"
    assert compare_text(stored, "/check/work/main/bnlib/utils.py:97: UserWarning: x", EXACT) is None
    assert compare_text(stored, "/work/main/bnlib/layers.py:97: UserWarning: x", EXACT)


def test_tolerance_metadata_is_checked():
    assert Tolerance.from_metadata({"tolerance": {"rtol": 0.02, "basis": "measured"}}) == Tolerance(0.02, 0)
    assert Tolerance.from_metadata({}) == EXACT
    with pytest.raises(ValueError, match="expected keys rtol, atol, basis"):
        Tolerance.from_metadata({"tolerance": {"rtoll": 0.02}})


def test_suggested_tolerances_are_measured_moves_times_the_margin_rounded_up():
    assert nice_ceil(0.0031) == 0.0031 and nice_ceil(0.01) == 0.01 and nice_ceil(0.01234) == 0.013
    tol = suggest([(0.881, 0.044), (2.0, 0.01), (0.001, 0.004)], margin=3)
    assert tol == Tolerance(rtol=0.15, atol=0.012)  # 3 x 4.99 % -> 0.15; 3 x 0.004 (near zero) -> 0.012


def _notebook(tmp_path, stored: str, printed: str, tolerance=None):
    cell = {"cell_type": "code", "execution_count": 1, "id": "c1", "source": f"print({printed!r})",
            "metadata": {"tolerance": tolerance} if tolerance else {},
            "outputs": [{"output_type": "stream", "name": "stdout", "text": stored + "\n"}]}
    nb = {"cells": [cell], "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3",
                                                       "language": "python"}},
          "nbformat": 4, "nbformat_minor": 5}
    path = tmp_path / "nb.ipynb"
    path.write_text(json.dumps(nb), encoding="utf-8")
    (tmp_path / "conftest.py").write_text(f"import sys\nsys.path.insert(0, {str(ROOT)!r})\n"
                                          "pytest_plugins = ['tools.nbval_numeric']\n", encoding="utf-8")
    (tmp_path / "pytest.ini").write_text("[pytest]\n", encoding="utf-8")
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--nbval",
                           "--nbval-current-env", "-c", str(tmp_path / "pytest.ini"), str(path)],
                          cwd=tmp_path, capture_output=True, text=True, timeout=300)


@pytest.mark.slow
@pytest.mark.parametrize("printed, tolerance, passes", [
    ("test acc 0.881", None, True),
    ("test acc 0.882", None, True),                       # last-digit flip
    ("test acc 0.925", None, False),                      # no tolerance declared
    ("test acc 0.925", {"rtol": 0.1, "basis": "t"}, True),
    ("test acc 0.999", {"rtol": 0.1, "basis": "t"}, False),
    ("test err 0.881", {"rtol": 0.1, "basis": "t"}, False),
])
def test_nbval_uses_the_cell_tolerance(tmp_path, printed, tolerance, passes):
    run = _notebook(tmp_path, "test acc 0.881", printed, tolerance)
    assert (run.returncode == 0) == passes, run.stdout[-3000:]
    if not passes:
        assert "mismatch 'stdout'" in run.stdout
