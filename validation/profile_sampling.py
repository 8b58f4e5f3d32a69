"""The same profiled run seen by a sampling profiler (py-spy): its samples attributed to the hotspot entries
of ``ckkslab profile``, so the two top-5 lists can be put side by side.

    py-spy record --format raw -o pyspy.txt -- ckkslab --quiet profile --model models/clinical --json p.json
    python -m validation.profile_sampling p.json pyspy.txt
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ckks import instrument

from .profiling import _TIMED_OBJECTS, UNTRACKED, run_profile

# ----- the same run seen by a sampling profiler ----------------------------------------------------------
# (file, function) as py-spy names a frame -> the hotspot entry that owns its time. Methods of the timed
# objects map to op.<method>; Numba's dispatcher compiling or loading a kernel maps to numba.compile.
SAMPLED_ENTRIES: dict[tuple[str, str], str] = {
    ("ntt.py", "ntt_forward"): "ntt", ("ntt.py", "ntt_inverse"): "intt",
    ("rns.py", "mul"): "mul", ("rns.py", "mul_add_into"): "mul_add",
    ("dot_kernels.py", "dot_plain_shoup"): "mac_shoup", ("dot_kernels.py", "dot_tensor_shoup"): "mac_shoup",
    ("basis_conversion.py", "fast_base_convert"): "base_convert",
    ("basis_conversion.py", "mod_down"): "mod_down",
    ("basis_conversion.py", "mod_down_and_rescale"): "mod_down_rescale",
    ("basis_conversion.py", "divide_by_last_prime"): "rescale",
    ("keyswitch.py", "key_switch_extended"): "key_switch",
    ("embedding.py", "embed_inverse"): "encode_fft", ("embedding.py", "embed"): "decode_fft",
    ("sampling.py", "ternary"): "sample_ternary", ("sampling.py", "gaussian"): "sample_gaussian",
    ("sampling.py", "uniform_mod"): "sample_uniform",
    ("serialization.py", "_encode"): "serialize", ("serialization.py", "from_bytes"): "deserialize",
}


def _parse_frame(frame: str) -> tuple[str, str, int]:
    """``"func (path/file.py:12)"`` -> ("func", "file.py", 12); line 0 when absent."""
    func, _, rest = frame.strip().rpartition(" (")
    if not func:
        return frame.strip(), "", 0
    location = rest.rstrip(")")
    path, _, line = location.rpartition(":")
    return func, path.rsplit("/", 1)[-1], int(line) if line.isdigit() else 0


def sampled_entry(frames: list[str]) -> str:
    """The hotspot entry a sampled stack (outermost frame first) belongs to: its innermost mapped frame."""
    for frame in reversed(frames):
        func, filename, _ = _parse_frame(frame)
        if filename == "dispatcher.py" and "compile" in func:
            return instrument.COMPILE
        entry = SAMPLED_ENTRIES.get((filename, func))
        if entry is not None:
            return entry
        cls, _, method = func.partition(".")
        if cls in _TIMED_OBJECTS and method and not method.startswith("_") and "<" not in method:
            return "op." + method
    return UNTRACKED


def attribute_samples(collapsed: str, keep: Callable[[list[str]], bool] | None = None) -> dict[str, float]:
    """Share of the samples per hotspot entry, from py-spy's ``--format raw`` (collapsed stacks) output.

    Each line is ``frame;frame;...;frame COUNT``; ``keep(frames)`` selects the samples to count.
    """
    counts: dict[str, float] = {}
    total = 0
    for line in collapsed.splitlines():
        stack, _, count = line.rstrip().rpartition(" ")
        if not stack or not count.isdigit():
            continue
        frames = stack.split(";")
        if keep is not None and not keep(frames):
            continue
        entry = sampled_entry(frames)
        counts[entry] = counts.get(entry, 0) + int(count)
        total += int(count)
    return {name: n / total for name, n in counts.items()} if total else {}


def within_recording(stage: str | None = None) -> Callable[[list[str]], bool]:
    """A ``keep`` for ``attribute_samples``: samples taken inside ``run_profile``'s recording block (not the
    setup, not the uninstrumented re-run), optionally only those inside a call of ``nn.encrypted.<stage>``."""
    import inspect

    lines, first = inspect.getsourcelines(run_profile)
    begin = first + next(i for i, t in enumerate(lines) if "instrument.recording() as rec" in t)
    end = first + next(i for i, t in enumerate(lines) if "result = ProfileResult(" in t)

    def keep(frames: list[str]) -> bool:
        inside = any(func == "run_profile" and begin <= line < end
                     for func, _, line in map(_parse_frame, frames))
        if not inside:
            return False
        return stage is None or any(_parse_frame(f)[:2] == (stage, "encrypted.py") for f in frames)

    return keep


def compare_with_samples(profile_json: dict[str, Any], collapsed: str, top: int = 5) -> str:
    """Top entries of the instrumented tables beside a sampling profiler's, for the run and for predict."""
    lines = []
    for title, key, stage in (("whole run", "hotspots", None), ("predict", "hotspots_predict", "predict")):
        ours = profile_json[key][:top]
        sampled = sorted(attribute_samples(collapsed, within_recording(stage)).items(), key=lambda kv: -kv[1])
        lines.append(f"{title}: instrumented (self time share)  |  sampled (share of samples)")
        for i in range(top):
            left = f"{ours[i]['name']:<18} {100 * ours[i]['share']:5.1f}%" if i < len(ours) else ""
            right = f"{sampled[i][0]:<18} {100 * sampled[i][1]:5.1f}%" if i < len(sampled) else ""
            lines.append(f"  {i + 1}. {left:<28} |  {right}")
    return "\n".join(lines)


if __name__ == "__main__":  # python -m validation.profile_sampling PROFILE.json PYSPY_RAW.txt
    import sys

    if len(sys.argv) != 3:
        sys.exit("usage: python -m validation.profile_sampling PROFILE.json PYSPY_RAW.txt")
    print(compare_with_samples(json.loads(Path(sys.argv[1]).read_text()), Path(sys.argv[2]).read_text()))
