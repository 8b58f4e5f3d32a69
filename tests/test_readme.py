"""The README's engine example runs as written (so the documented API cannot drift from the code)."""

import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"


@pytest.mark.slow
def test_readme_engine_example_runs(tmp_path, monkeypatch):
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
    assert blocks, "README has no python example"
    code = blocks[0].replace("/tmp/ct.ckks", str(tmp_path / "ct.ckks"))
    exec(compile(code, "README.md", "exec"), {})


def test_the_four_parts_section_names_every_module_of_the_tree():
    """Every package and module under ckks/ is named in "The four parts", in the folder the tree has it."""
    text = README.read_text()
    block = text[text.index("## The four parts"):text.index("## The engine in ten lines")]
    root = README.parent
    for folder in ("ckks/", "nn/", "reference/", "validation/", "benchmarks/", "tests/"):
        assert folder in block and (root / folder).is_dir(), folder
    lines = block.splitlines()
    for sub in ("ring", "rlwe", "scheme"):
        start = next(i for i, line in enumerate(lines) if line.strip().startswith(f"{sub}/"))
        end = next((i for i in range(start + 1, len(lines)) if re.match(r"^\s{2}\S", lines[i])), len(lines))
        described = " ".join(lines[start:end])
        modules = {p.stem for p in (root / "ckks" / sub).glob("*.py")} - {"__init__"}
        assert modules, sub
        missing = {m for m in modules if not re.search(rf"\b{m}\b", described)}
        assert not missing, f"ckks/{sub}/ has {sorted(missing)}, which the README does not list there"
    for module in ("errors", "instrument", "progress", "threads", "allocator", "params"):
        assert (root / "ckks" / f"{module}.py").is_file() and f"{module}.py" in block, module
