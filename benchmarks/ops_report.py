"""The table ``benchmarks.ops`` prints: both engines' times, the ratio and the target, per op."""

from __future__ import annotations

from typing import Any

from benchmarks.ops import SEAL_NTT_REPORTED_RING_DEGREE, SEAL_NTT_REPORTED_US


def _ms(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds * 1e3:.4g}"


def _ratio(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def format_table(result: dict[str, Any]) -> str:
    """The human-readable report: parameters, load, the table (ms, 4 significant digits), compile cost."""
    p = result["ckkslab_params"]
    chain = "[" + ", ".join(str(round(b)) for b in p["moduli_bits"]) + "]"
    special = ", ".join(str(round(b)) for b in p["special_moduli_bits"])
    machine = result["machine"]
    lines = [
        f"ckkslab bench ops: N={result['ring_degree']}, chain {chain} + special [{special}], scale "
        f"2^{p['scale_bits']:g}, security {p['security_level'] or 'none (toy)'}; "
        f"min of {result['repeats']} repeats x {result['rounds']} round(s); threads: ckkslab "
        f"{result['threads']['ckkslab']}, SEAL {result['threads']['seal'] or '-'}",
        f"machine load (1 min): {machine['load_1min_before']} before, {machine['load_1min_after']} after; "
        f"{machine['cpu_count']} cores",
    ]
    if not result["seal_available"]:
        lines.append(f"SEAL was not available, its column is empty: {result['seal_unavailable']}")
    header = f"{'op':<22} {'ckkslab ms':>11} {'SEAL ms':>11} {'ratio':>8}  target"
    lines += [header, "-" * len(header)]
    for entry in result["ops"]:
        target = "" if entry["target_ratio"] is None else f"<= {entry['target_ratio']:g}"
        seal_ms, ratio = _ms(entry["seal_s"]), _ratio(entry["ratio"])
        if entry["key"] == "ntt_forward_limb":
            if entry.get("seal_reported_s") is not None:
                seal_ms = f"({_ms(entry['seal_reported_s'])})"
                ratio = f"({entry['ratio_to_reported']:.3f})"
            target = f"{target} x SEAL's" if target else ""
        if entry["met"] is not None:
            target += "  met" if entry["met"] else "  NOT met"
        line = f"{entry['op']:<22} {_ms(entry['ckkslab_s']):>11} {seal_ms:>11} {ratio:>8}  {target}"
        lines.append(line.rstrip())
    lines.append(f"(SEAL's NTT: {SEAL_NTT_REPORTED_US:g} us/limb at N={SEAL_NTT_REPORTED_RING_DEGREE}, "
                 "reported in issue 3, not measured here: pyhelayers does not expose it)")
    lines.append("ratio = ckkslab ms / SEAL ms; precision of the timed ckkslab results (bits): "
                 + ", ".join(f"{k} {v:.1f}" for k, v in result["ckkslab_precision_bits"].items()))
    lines.append("compile kernels (ckkslab, once, before the timings): "
                 f"{result['compile_kernels']['summary']}")
    first = result["first_call"]
    if first is not None:
        for name, label in (("cold_cache", "fresh process, empty Numba cache"),
                            ("warm_cache", "fresh process, warm Numba cache ")):
            t = first[name]
            lines.append(f"first call, {label}: import {t['import_s']:.2f} s + keys "
                         f"{t['keygen_first_s']:.2f} s + first pass over the ops "
                         f"{t['ops_first_pass_s']:.2f} s (second pass {t['ops_second_pass_s']:.3f} s)")
        lines.append(f"compile time (cold minus warm) about {first['compile_s']:.1f} s")
    return "\n".join(lines)
