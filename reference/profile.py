"""HElayers run requirements from our options, and a plain-dict description of what HElayers chose.

The requirements follow the paper's flow: context options ["HEaaN_CKKS", "SEAL_CKKS"], integer part 7 bits,
fractional part 30 bits, ``optimize_for_batch_size``. HElayers' optimizer then picks the profile (ring
degree, chain, scale, tile layout); Aharoni et al., "HeLayers: A Tile Tensors Framework for Large Neural
Networks on Encrypted Data" (PETS 2023), section 4, describes the tile tensors whose layout we report.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from types import ModuleType
from typing import Any

from reference.errors import HelayersInputError, HelayersUnavailable

# Our short backend names -> HElayers context names.
CONTEXT_NAMES = {
    "heaan": "HEaaN_CKKS",
    "seal": "SEAL_CKKS",
    "openfhe": "OpenFHE_CKKS",
    "lattigo": "Lattigo_CKKS",
}
# The paper's context options, in its priority order.
PAPER_CONTEXT_OPTIONS = ("HEaaN_CKKS", "SEAL_CKKS")


def resolve_backends(pyhelayers: ModuleType, backend: str | Sequence[str]) -> tuple[list[str], list[str]]:
    """HElayers context names for ``backend``, split into (registered in this build, requested but absent).

    ``backend`` is a name ("SEAL", "openfhe", "Lattigo_CKKS"), a comma-separated priority list
    ("HEaaN,SEAL"), a sequence of names, or "paper" for the paper's ["HEaaN_CKKS", "SEAL_CKKS"].

    Raises:
        HelayersInputError: a name is not one of HEaaN, SEAL, OpenFHE, Lattigo (or their *_CKKS forms).
        HelayersUnavailable: none of the requested backends is in this pyhelayers build.
    """
    names = backend.split(",") if isinstance(backend, str) else list(backend)
    wanted: list[str] = []
    for raw in names:
        key = str(raw).strip().lower()
        if key == "paper":
            wanted.extend(PAPER_CONTEXT_OPTIONS)
            continue
        key = key.removesuffix("_ckks")
        if key not in CONTEXT_NAMES:
            choices = ", ".join(["paper", *(v.removesuffix("_CKKS") for v in CONTEXT_NAMES.values())])
            raise HelayersInputError(f"unknown HElayers backend {raw!r}; choose from {choices}")
        wanted.append(CONTEXT_NAMES[key])
    wanted = list(dict.fromkeys(wanted))
    if not wanted:
        raise HelayersInputError("no HElayers backend requested")
    present = [n for n in wanted if pyhelayers.HeContext.is_registered_context(n)]
    absent = [n for n in wanted if n not in present]
    if not present:
        built = [n for n in CONTEXT_NAMES.values() if pyhelayers.HeContext.is_registered_context(n)]
        raise HelayersUnavailable(f"none of the requested HElayers backends {absent} is in this pyhelayers "
                                  f"build; available: {built}")
    return present, absent


def run_requirements(pyhelayers: ModuleType, context_names: Sequence[str], batch_size: int,
                     encrypt_weights: bool, integer_bits: int, fractional_bits: int) -> Any:
    """A ``HeRunRequirements`` for the paper's flow.

    ``set_he_context_options(context_names)``, ``set_integer_part_precision(integer_bits)``,
    ``set_fractional_part_precision(fractional_bits)``, ``set_model_encrypted(encrypt_weights)``,
    ``optimize_for_batch_size(batch_size)``. HElayers may raise the precision to what a backend offers
    (SEAL: 30 -> 40 fractional bits); ``describe`` reports what it actually chose.
    """
    req = pyhelayers.HeRunRequirements()
    req.set_he_context_options(list(context_names))
    req.set_integer_part_precision(integer_bits)
    req.set_fractional_part_precision(fractional_bits)
    req.set_model_encrypted(bool(encrypt_weights))
    req.optimize_for_batch_size(batch_size)
    return req


def profile_json(profile: Any) -> dict[str, Any]:
    """The machine-readable part of ``HeProfile.to_string()`` (its last line, a JSON object)."""
    for line in reversed(profile.to_string().splitlines()):
        if line.startswith("{"):
            return json.loads(line)
    return {}


def profile_to_bytes(profile: Any) -> bytes:
    """Serialize an ``HeProfile`` for the other party (the JSON form ``HeProfile.from_string`` reads)."""
    return json.dumps(profile_json(profile)).encode("utf-8")


def profile_from_bytes(pyhelayers: ModuleType, data: bytes) -> Any:
    """Rebuild an ``HeProfile`` from ``profile_to_bytes`` output."""
    profile = pyhelayers.HeProfile()
    profile.from_string(data.decode("utf-8"))
    return profile


_WEIGHT_LINE = re.compile(r"\[([^\]]*)\] \((Encrypted|Encoded)\)")


def weight_tile_counts(model_text: str) -> dict[str, int] | None:
    """Count the ciphertexts (Encrypted) and plaintexts (Encoded) holding a NeuralNet's weights.

    ``NeuralNet.to_string()`` lists each weight tile tensor as ``[a, c/d, */e] (Encrypted)``: per
    dimension, original size / tile size (a bare ``a`` has tile size 1), ``*`` for a duplicated dimension.
    The tensor uses prod(ceil(a/b)) tiles (a duplicated dimension counts 1). Returns None if a shape
    cannot be read.
    """
    counts = {"Encrypted": 0, "Encoded": 0}
    for dims, kind in _WEIGHT_LINE.findall(model_text):
        tiles = 1
        for dim in dims.split(","):
            match = re.fullmatch(r"\s*(\*|\d+)(?:/(\d+))?\S*\s*", dim)
            if match is None:
                return None
            if match.group(1) != "*":
                tiles *= math.ceil(int(match.group(1)) / int(match.group(2) or 1))
        counts[kind] += tiles
    return {"ciphertexts": counts["Encrypted"], "plaintexts": counts["Encoded"]}


def count_ciphertexts(encrypted_data: Any) -> int:
    """Number of ciphertexts (used tiles) in an ``EncryptedData`` over all its batches and items."""
    total = 0
    for b in range(encrypted_data.get_num_batches()):
        batch = encrypted_data.get_batch(b)
        total += sum(batch.get_item(i).get_num_used_tiles() for i in range(batch.get_num_items()))
    return total


def _modulus_chain(context: Any) -> list[int] | None:
    """The primes the backend exposes (SEAL: the ciphertext chain; OpenFHE: includes its special prime last;
    Lattigo: not exposed, None)."""
    try:
        return [int(q) for q in context.get_modulus_chain()]
    except RuntimeError:
        return None


def describe(pyhelayers: ModuleType, profile: Any, context: Any) -> dict[str, Any]:
    """What HElayers chose and what the created context really holds, as JSON-ready values.

    Ring degree N = 2 x slots (CKKS packs N/2 complex slots). ``moduli`` is what
    ``HeContext.get_modulus_chain`` exposes (None where the backend does not); pyhelayers does not expose
    SEAL's special (key-switching) prime. ``scale_bits`` is None where the backend keeps the scale internal
    (OpenFHE reports a default scale of 1). ``helayers_estimates`` are HElayers' own predictions for the
    profile: ``*_cpu_time`` in microseconds, ``*_memory`` in bytes.
    """
    info = profile_json(profile)
    requirement = context.get_he_config_requirement()
    chain = _modulus_chain(context)
    scale = float(context.get_default_scale())
    layout = info.get("tile_layout", {})
    tile_sizes = [int(layout[f"t{i}"]) for i in range(1, int(layout.get("num_dims", 0)) + 1)]
    public = info.get("public_functions", {})
    steps = public.get("rotation_steps", {})
    measures = info.get("measures", {})
    slots = int(context.slot_count())
    return {
        "pyhelayers_version": str(getattr(pyhelayers, "VERSION", "unknown")),
        "context_name": profile.get_context_name(),
        "backend": context.get_library_name(),
        "scheme": context.get_scheme_name(),
        "ring_degree": 2 * slots,
        "slots": slots,
        "security_level": int(context.get_security_level()),
        "moduli": chain,
        "moduli_bits": None if chain is None else [round(math.log2(q), 3) for q in chain],
        "num_primes": None if chain is None else len(chain),
        "special_primes": "not exposed by pyhelayers",
        "top_chain_index": int(context.get_top_chain_index()),
        "scale_bits": round(math.log2(scale), 6) if scale > 1 else None,
        "multiplication_depth": int(requirement.multiplication_depth),
        "integer_part_bits": int(requirement.integer_part_precision),
        "fractional_part_bits": int(requirement.fractional_part_precision),
        "packing": info.get("mode_name"),
        "tile_layout": tile_sizes,
        "rotation_steps": [int(steps[k]) for k in sorted(steps, key=int)],
        "base_chain_index": int(info.get("base_chain_index", -1)),
        "helayers_batch_size": int(profile.get_optimal_batch_size()),
        "helayers_estimates": {k: float(v) for k, v in measures.items() if float(v) >= 0},
    }
