"""nbval, with numbers compared as numbers: a pytest plugin loaded by conftest.py.

nbval compares a cell's new outputs with the stored ones as exact strings. Floating-point
results differ in their last digits between CPU models (kernels are blocked by caches and
cores, NumPy's OpenBLAS picks its kernel by CPU), and chaotic training turns those last bits
into second-digit differences. This plugin keeps nbval's rules for everything else (same
output keys, same number of outputs, words, integers, shapes and line layout exactly) and
compares each floating-point number within a tolerance:

    |new - stored| <= max(atol, rtol * |stored|, one unit in the last printed digit)

The last-digit unit lets a value that sits on a rounding boundary flip (0.8276 vs 0.8277);
anything more needs a tolerance in the cell's metadata, measured with tools/numeric_spread.py:

    "metadata": {"tolerance": {"rtol": 0.05, "atol": 0.002, "basis": "measured ..."}}

`nan` matches only `nan`, `inf` only an `inf` of the same sign. Integers (no point, no
exponent) are compared exactly, as words are.
"""
from __future__ import annotations

import math
import re
from collections import defaultdict
from dataclasses import dataclass

# A float literal: digits with a point or an exponent, or nan/inf, not glued to a word
# ("float32", "v1.2") or to further digits. A sentence-ending "." is not part of the number,
# nor is a multiplication sign written as x ("grew 2.005x").
FLOAT = re.compile(
    r"(?<![A-Za-z0-9_.])"
    r"(?P<num>[-+]?(?:(?:\d+\.\d*|\.\d+)(?:[eE][-+]?\d+)?|\d+[eE][-+]?\d+|nan|inf))"
    r"(?![A-Za-wyz0-9_]|x[A-Za-z0-9_])(?!\.\d)"
)
SPACES = re.compile(r"[ \t]+")
# An absolute path into this repository, as a warning prints it: the clone's location differs
# between machines ("/work/main/bnlib/utils.py" here, "/check/work/main/bnlib/utils.py" in CI).
REPO_PATH = re.compile(r"(?:/[^\s/'\"]+)+/(?=(?:bnlib|chapters|tools|tests)/)")


@dataclass(frozen=True)
class Tolerance:
    rtol: float = 0.0
    atol: float = 0.0

    @classmethod
    def from_metadata(cls, metadata: dict) -> "Tolerance":
        spec = metadata.get("tolerance") or {}
        unknown = set(spec) - {"rtol", "atol", "basis"}
        if unknown:
            raise ValueError(f"cell metadata 'tolerance': expected keys rtol, atol, basis "
                             f"(got {sorted(unknown)})")
        return cls(float(spec.get("rtol", 0.0)), float(spec.get("atol", 0.0)))


def last_digit(text: str) -> float:
    """One unit in the last printed digit: '0.881' -> 0.001, '8.9e-16' -> 1e-16, '3.' -> 1."""
    mantissa, _, exponent = text.lower().lstrip("+-").partition("e")
    decimals = len(mantissa.partition(".")[2])
    return 10.0 ** (int(exponent or 0) - decimals)


def split_numbers(text: str) -> tuple[list[str], list[str]]:
    """-> (the text between floats, the floats), with len(text parts) == len(floats) + 1."""
    parts, numbers, start = [], [], 0
    for m in FLOAT.finditer(text):
        parts.append(text[start:m.start()])
        numbers.append(m.group("num"))
        start = m.end()
    parts.append(text[start:])
    return parts, numbers


def _layout(part: str, first: bool, last: bool) -> str:
    """Text between numbers, up to the padding that a wider or narrower number changes."""
    part = SPACES.sub(" ", part)
    if not first:
        part = part.lstrip(" ")
    if not last:
        part = part.rstrip(" ")
    return part


def numbers_match(stored: str, new: str, tol: Tolerance) -> tuple[bool, float]:
    """-> (whether `new` matches `stored`, the allowed difference)."""
    a, b = float(stored), float(new)
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b), 0.0
    if math.isinf(a) or math.isinf(b):
        return a == b, 0.0
    allowed = max(tol.atol, tol.rtol * abs(a), last_digit(stored), last_digit(new))
    return abs(a - b) <= allowed * (1 + 1e-9), allowed


def pair_numbers(stored: str, new: str) -> tuple[list[tuple[str, str]], str | None]:
    """-> ([(stored float, new float), ...], None), or ([], why the texts differ beyond numbers)."""
    s_parts, s_nums = split_numbers(stored)
    n_parts, n_nums = split_numbers(new)
    if len(s_nums) != len(n_nums):
        return [], (f"the stored output has {len(s_nums)} floating-point numbers, the new one "
                    f"{len(n_nums)}")
    k = len(s_parts) - 1
    for i, (sp, np_) in enumerate(zip(s_parts, n_parts)):
        if _layout(sp, i == 0, i == k) != _layout(np_, i == 0, i == k):
            return [], f"text differs (not a number): stored {sp!r}, new {np_!r}"
    return list(zip(s_nums, n_nums)), None


def compare_text(stored: str, new: str, tol: Tolerance) -> str | None:
    """None if `new` matches `stored`; otherwise a one-paragraph report of the first mismatch."""
    stored, new = REPO_PATH.sub("<repo>/", stored), REPO_PATH.sub("<repo>/", new)
    if stored == new:
        return None
    pairs, why = pair_numbers(stored, new)
    if why:
        return why
    for i, (s, n) in enumerate(pairs):
        ok, allowed = numbers_match(s, n, tol)
        if not ok:
            return (f"number {i + 1} of {len(pairs)}: stored {s}, new {n}, "
                    f"|difference| {abs(float(s) - float(n)):.3g} > allowed {allowed:.3g} "
                    f"(rtol {tol.rtol:g}, atol {tol.atol:g}, last printed digit {last_digit(s):g})")
    return None


def flatten(outputs, sanitize, skip=()) -> dict[str, list]:
    """nbval's layout: {key: [sanitized value, ...]} over all outputs, `data` flattened
    (outputs already passed through nbval's transform_streams_for_comparison)."""
    flat = defaultdict(list)
    for output in outputs:
        for key, value in output.items():
            if key in skip:
                continue
            if key == "data":
                for mime, text in value.items():
                    if mime not in skip:
                        flat[mime].append(sanitize(text))
            else:
                flat[key].append(sanitize(value))
    return flat


def compare_outputs(self, test, ref, skip_compare=None):
    """Drop-in for nbval's IPyNbCell.compare_outputs: same structure checks, numeric floats."""
    from nbval.plugin import transform_streams_for_comparison

    skip = skip_compare or self.parent.skip_compare
    new = flatten(transform_streams_for_comparison(test), self.sanitize, skip)
    stored = flatten(transform_streams_for_comparison(ref), self.sanitize, skip)
    self.comparison_traceback = []
    report = self.comparison_traceback.append
    if set(stored) != set(new):
        report(f"output fields differ: stored {sorted(stored)}, new {sorted(new)}")
        return False
    tol = Tolerance.from_metadata(self.cell.get("metadata", {}))
    for key, stored_values in stored.items():
        new_values = new[key]
        if len(stored_values) != len(new_values):
            report(f'dissimilar number of outputs for key "{key}": stored {len(stored_values)}, '
                   f"new {len(new_values)}")
            return False
        for s, n in zip(stored_values, new_values):
            why = compare_text(s, n, tol) if isinstance(s, str) and isinstance(n, str) else (
                None if s == n else "values differ")
            if why:
                report(f" mismatch '{key}': {why}")
                self.format_output_compare(key, s, n)
                return False
    return True


def pytest_configure(config):
    if config.pluginmanager.hasplugin("nbval"):
        from nbval.plugin import IPyNbCell

        IPyNbCell.compare_outputs = compare_outputs
