"""docs/walkthrough.md is executed: every ``python`` block runs, in order, in one namespace, and what it
prints must match the ``text`` block that follows it (words exactly, numbers within a tolerance).

Update the printed outputs after a change:  python tests/docs/test_walkthrough.py --update
"""

from __future__ import annotations

import contextlib
import io
import math
import os
import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "walkthrough.md"
BLOCK = re.compile(r"```python\n(.*?)```\n\n```text\n(.*?)```", re.S)
NUMBER = re.compile(r"-?\d+(?:\.\d+)?(?:e[+-]?\d+)?")
# The run is seeded, so on one platform it prints the same numbers every time; the tolerances let the noise
# move (another platform's floating point, or a change in how the engine draws its randomness) without letting
# a real change of meaning through (a level, a diagnosis, a precision several bits off).
RELATIVE_TOLERANCE = 0.10
ERROR_FACTOR_BITS = 3.0
RANDOM_LOOKING_DIGITS = 6  # integers this long are residues / coefficients: compared by length only


def run_blocks(text: str) -> list[tuple[str, str, str]]:
    """(code, printed output, recorded output) of every python block, run in order in one namespace."""
    namespace: dict[str, object] = {"__name__": "walkthrough"}
    results = []
    previous = Path.cwd()
    os.chdir(ROOT)
    try:
        for match in BLOCK.finditer(text):
            code, recorded = match.group(1), match.group(2)
            out = io.StringIO()
            with contextlib.redirect_stdout(out):
                exec(compile(code, str(DOC), "exec"), namespace)  # noqa: S102 - the document's own code
            results.append((code, out.getvalue(), recorded))
    finally:
        os.chdir(previous)
    return results


def _numbers_close(a: str, b: str) -> bool:
    """Whether a printed number still says what the recorded one says.

    Integers of 6+ digits are residues or coefficients (random-looking): same length is enough. Numbers in
    e-notation are errors, set by the encryption noise: within a factor 8 (3 bits). Other numbers (levels,
    values, bits of precision) within 10 % (about 3 bits at 30).
    """
    if a == b:
        return True
    x, y = float(a), float(b)
    integers = re.fullmatch(r"-?\d+", a) and re.fullmatch(r"-?\d+", b)
    if integers and len(b.lstrip("-")) >= RANDOM_LOOKING_DIGITS:
        return abs(len(a.lstrip("-")) - len(b.lstrip("-"))) <= 1
    if not (math.isfinite(x) and math.isfinite(y)):
        return False
    if "e" in a and "e" in b and x != 0 and y != 0:
        return (x > 0) == (y > 0) and abs(math.log2(abs(x) / abs(y))) <= ERROR_FACTOR_BITS
    return abs(x - y) <= RELATIVE_TOLERANCE * max(abs(x), abs(y)) + 1e-12


def same_output(printed: str, recorded: str) -> str | None:
    """None when ``printed`` matches ``recorded``, else the first differing line pair."""
    a, b = printed.splitlines(), recorded.splitlines()
    if len(a) != len(b):
        return f"{len(a)} lines printed, {len(b)} recorded"
    for line_a, line_b in zip(a, b, strict=True):
        if NUMBER.split(line_a) != NUMBER.split(line_b):
            return f"printed  {line_a!r}\nrecorded {line_b!r}"
        nums_a, nums_b = NUMBER.findall(line_a), NUMBER.findall(line_b)
        if not all(_numbers_close(x, y) for x, y in zip(nums_a, nums_b, strict=True)):
            return f"printed  {line_a!r}\nrecorded {line_b!r}"
    return None


def update() -> None:
    """Run the document and write each block's output into the text block after it."""
    text = DOC.read_text()
    outputs = iter(run_blocks(text))

    def fill(match: re.Match[str]) -> str:
        _code, printed, _ = next(outputs)
        return f"```python\n{match.group(1)}```\n\n```text\n{printed}```"

    DOC.write_text(BLOCK.sub(fill, text))


def test_the_comparison_is_strict_enough() -> None:
    assert same_output("precision 30.1 bits", "precision 30.2 bits") is None
    assert same_output("precision 30.1 bits", "precision 25.0 bits") is not None
    assert same_output("error 3.9e-11", "error 1.0e-11") is None
    assert same_output("error 3.9e-11", "error 1.0e-13") is not None
    assert same_output("diagnosis: diabetic", "diagnosis: not diabetic") is not None
    assert same_output("level 5", "level 4") is not None
    assert same_output("c 123456789012", "c 987654321098") is None


@pytest.mark.slow
def test_walkthrough_runs_and_prints_what_it_says() -> None:
    text = DOC.read_text()
    results = run_blocks(text)
    assert len(results) == 8, "every python block must be followed by its text block"
    for code, printed, recorded in results:
        assert printed.strip(), f"a block printed nothing:\n{code}"
        problem = same_output(printed, recorded)
        assert problem is None, f"docs/walkthrough.md is out of date ({problem}); run " \
            "`python tests/docs/test_walkthrough.py --update` and review the diff"
    final = results[-1][1]
    assert "decisions equal 4096/4096" in final
    bits = float(re.search(r"\(([\d.]+) bits;", final).group(1))
    assert bits >= 25


if __name__ == "__main__":
    if sys.argv[1:] != ["--update"]:
        sys.exit("usage: python tests/docs/test_walkthrough.py --update")
    update()
    print(f"updated {DOC}")
