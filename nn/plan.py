"""Parameter planning for encrypted inference: from the network's depth, its observed value ranges and the
requested precision to CKKS parameters, packing and rotation keys, with the reasons printed.

Budget (bits): a fresh ciphertext holds values |v| < 2^I at scale 2^S, so
  base = S + I + 1           (what is left after the last rescale: the integer part and a sign bit; one prime,
                              or two when it exceeds 60 bits, so a large I never forces a small S),
  q_1..q_D = S               (one prime per rescale, D = multiplicative depth),
  P    = 60 K                (K special primes for key switching, K = 3, 2 or 1: the most that fit),
and log2(Q*P) = (D + 1) S + I + 1 + 60 K must stay under the HE Standard bound for N. We take the smallest N
whose slots hold the batch and whose bound leaves S >= F + 10 + log2(N)/2 (F = requested fractional bits: the
noise of a few key switches is about 2^(log2(N)/2 + 10) at scale 1), and then the largest S that fits (<= 60).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

import ckks
from ckks.params import HE_STANDARD_MAX_LOG_QP

from . import batch_packing, single_packing
from .model import SQUARE, Dense, PlainNetwork, Polynomial

SPECIAL_PRIME_BITS = 60
MAX_PRIME_BITS = 60


class PlanError(ValueError):
    """No secure parameters fit this network, batch and precision; the message says what to change."""


def layer_depth(layer: Dense | Polynomial) -> int:
    """Levels a layer consumes: 1 for Dense (plaintext/ciphertext weights, one rescale), 1 for exactly x^2
    and for a linear polynomial (c2 = 0), 2 for any other degree-2 polynomial (c2*x + c1, then times x; 2 x^2
    too), as ``nn.encrypted`` evaluates them."""
    if isinstance(layer, Dense):
        return 1
    degree = len(layer.coeffs) - 1
    if degree > 2:
        raise PlanError(
            f"layer {layer.name!r}: polynomial activations of degree {degree} are not supported (degree <= 2)"
        )
    if degree < 1:
        raise PlanError(f"layer {layer.name!r}: a constant activation carries no information")
    linear = degree == 1 or layer.coeffs[2] == 0.0
    return 1 if linear or tuple(layer.coeffs) == SQUARE else 2


@dataclass(frozen=True)
class InferencePlan:
    """Everything the client and the server must agree on before encrypting."""

    params: ckks.Parameters
    packing: str  # "batch": records in slots; "single": one record's features in slots
    batch_size: int
    block: int  # batch packing: slots per feature block (a power of two >= batch_size)
    features_per_ciphertext: int
    rotation_steps: tuple[int, ...]
    layer_levels: tuple[int, ...]  # level of each layer's input
    value_bound: float  # max |value| observed in any layer on the calibration data, times the margin
    int_bits: int
    frac_bits: int
    input_dim: int  # features per record: what encrypt_batch accepts and the network the plan was made for
    ranges: tuple[float, ...] = field(default=())
    # Batch packing: rotations of the input ciphertexts that the client encrypts and sends along, so that the
    # first Dense layer needs no key switch for them (only when that at most doubles the data: p = 2).
    client_rotations: tuple[int, ...] = ()

    @property
    def depth(self) -> int:
        """Levels the network consumes: from the top level to the output's level."""
        return self.layer_levels[0] - self.output_level if self.layer_levels else 0

    @property
    def output_level(self) -> int:
        """The level of the network's output: the number of base primes (``base_primes(S + I + 1)``) minus one.

        Counted from the bits the base must hold, not from the chain: a base prime may have the scale's size.
        """
        return len(base_primes(self.params.scale_bits + self.int_bits + 1)) - 1

    def describe(self, network: PlainNetwork | None = None) -> str:
        """A human explanation: depth, bits per prime, log QP vs the bound, slots, packing, keys."""
        p = self.params
        depth = self.depth
        base = len(p.moduli_bits) - depth
        bound = HE_STANDARD_MAX_LOG_QP[p.security][p.ring_degree] if p.security else None
        lines = [
            f"depth {depth} (one level per Dense and per x^2): {depth} rescaling primes of 2^{p.scale_bits} and "
            f"{base} base prime(s) of {sum(p.moduli_bits[:base])} bits in all for the integer part",
            f"values up to {self.value_bound:.3g} (observed max x margin) -> integer part {self.int_bits} bits; "
            f"requested fractional precision {self.frac_bits} bits",
            f"scale 2^{p.scale_bits}; chain {list(p.moduli_bits)} + special {list(p.special_moduli_bits)} bits",
            f"log2(QP) = {p.log_qp:.1f}"
            + (
                f" <= {bound} (HE Standard, {p.security}-bit, N = {p.ring_degree})"
                if bound
                else " (insecure toy)"
            ),
            f"N = {p.ring_degree}: {p.slots} slots; packing '{self.packing}'"
            + (
                f": {self.features_per_ciphertext} feature block(s) of {self.block} slots per ciphertext, "
                f"batch {self.batch_size}"
                if self.packing == "batch"
                else ""
            ),
            f"rotation keys for steps {list(self.rotation_steps) or 'none'}; key switching with {p.digits} digits"
            + (f"; the client also sends its inputs rotated by {list(self.client_rotations)}"
               if self.client_rotations else ""),
        ]
        if network is not None:
            n_ct = (
                _ciphertext_counts(network, self.features_per_ciphertext) if self.packing == "batch" else None
            )
            if n_ct:
                lines.append(f"ciphertexts per layer boundary: {n_ct}")
        ct_bytes = 2 * p.ring_degree * 8 * len(p.moduli)
        key_bytes = p.digits * 2 * p.ring_degree * 8 * (len(p.moduli) + len(p.special_moduli))
        lines.append(
            f"a fresh ciphertext is {ct_bytes / 2**20:.1f} MiB; each switching key (relin, and one per "
            f"rotation step) {key_bytes / 2**20:.1f} MiB"
        )
        return "\n".join("  " + line for line in lines)


def _ciphertext_counts(network: PlainNetwork, per_ct: int) -> list[int]:
    counts = [math.ceil(network.input_dim / per_ct)]
    for layer in network.layers:
        if isinstance(layer, Dense):
            counts.append(math.ceil(layer.weights.shape[1] / per_ct))
    return counts


def observed_ranges(network: PlainNetwork, calibration_x: np.ndarray) -> tuple[float, ...]:
    """max |value| at the input and at every layer's output on the calibration records."""
    return tuple(float(np.max(np.abs(t))) for t in network.forward_trace(calibration_x))


def plan_inference(
    network: PlainNetwork,
    calibration_x: np.ndarray,
    batch_size: int = 4096,
    frac_bits: int = 30,
    int_bits: int | None = None,
    margin: float = 2.0,
    packing: str = "auto",
    security: int | None = 128,
    ring_degree: int | None = None,
) -> InferencePlan:
    """Choose N, the chain, the scale, the packing and the rotation keys for this network.

    ``security=None`` plans insecure toy parameters (teaching and tests only) and then needs ``ring_degree``;
    ``ring_degree`` otherwise restricts the search to that N.

    Raises:
        PlanError: if nothing secure fits (too deep, or too much precision asked), or bad arguments.
    """
    if packing not in ("auto", "batch", "single"):
        raise PlanError(f"packing must be 'auto', 'batch' or 'single', got {packing!r}")
    if packing == "auto":  # one record: its features in the slots; several: records in the slots
        packing = "single" if batch_size == 1 else "batch"
    if not isinstance(batch_size, int) or batch_size < 1:
        raise PlanError(f"batch_size must be a positive integer, got {batch_size!r}")
    if not 8 <= frac_bits <= 50:
        raise PlanError(f"frac_bits must be in [8, 50], got {frac_bits}")
    depth = sum(layer_depth(layer) for layer in network.layers)
    ranges = observed_ranges(network, calibration_x)
    value_bound = max(ranges) * margin
    needed_int = max(1, math.ceil(math.log2(max(value_bound, 1.0))) + 1)
    if int_bits is None:
        int_bits = needed_int
    elif int_bits < needed_int:
        raise PlanError(
            f"int_bits={int_bits} is too small: values reach {max(ranges):.3g} on the calibration "
            f"data (x{margin} margin needs {needed_int} bits)"
        )
    if packing == "batch":
        block = 1 << max(0, math.ceil(math.log2(batch_size)))
        width = max(
            [network.input_dim] + [lay.weights.shape[1] for lay in network.layers if isinstance(lay, Dense)]
        )
    else:
        width = single_packing.width(
            [network.input_dim] + [lay.weights.shape[1] for lay in network.layers if isinstance(lay, Dense)]
        )
        block = width
    if security is None and ring_degree is None:
        raise PlanError("insecure toy plans (security=None) need an explicit ring_degree")
    bounds = (
        {ring_degree: 10**6}
        if security is None
        else {n: b for n, b in HE_STANDARD_MAX_LOG_QP.get(security, {}).items() if ring_degree in (None, n)}
    )
    if not bounds:
        raise PlanError(f"no {security}-bit HE Standard bound for ring degree {ring_degree}")
    for n in sorted(bounds):
        if n // 2 < block:
            continue
        bound = bounds[n]
        s_min = frac_bits + 10 + math.ceil(math.log2(n) / 2) if security is not None else frac_bits
        # More special primes = fewer, larger key-switching digits = fewer NTTs per key switch (Han-Ki 2020),
        # paid for with chain bits: take the most (up to 3) that still leave the scale its minimum.
        choice = None
        for specials in (3, 2, 1) if security is not None else (1,):
            s_max = min((bound - int_bits - 1 - specials * SPECIAL_PRIME_BITS) // (depth + 1), MAX_PRIME_BITS)
            if s_max >= s_min:
                choice = (specials, s_max)
                break
        if choice is None:
            continue
        specials, scale_bits = choice
        params = ckks.Parameters(
            ring_degree=n,
            moduli_bits=base_primes(scale_bits + int_bits + 1) + (scale_bits,) * depth,
            special_moduli_bits=(SPECIAL_PRIME_BITS,) * specials,
            scale_bits=scale_bits,
            security=security,
        )
        slots = n // 2
        if packing == "batch":
            per_ct = min(slots // block, 1 << math.ceil(math.log2(width)))
            # Blocks tile the slots exactly, so a rotation by j blocks wraps around block p - 1 to block 0.
            block = slots // per_ct
        else:
            per_ct = 1
        steps = packing_rotation_steps(packing, block, per_ct)
        levels, level = [], params.max_level
        for layer in network.layers:
            levels.append(level)
            level -= layer_depth(layer)
        dense = [lay for lay in network.layers if isinstance(lay, Dense)]
        first_rotates_inputs = bool(dense) and not batch_packing.rotate_outputs(
            batch_packing.ciphertext_count(network.input_dim, per_ct),
            batch_packing.ciphertext_count(dense[0].weights.shape[1], per_ct),
        )
        client_rotations = (block,) if packing == "batch" and per_ct == 2 and first_rotates_inputs else ()
        return InferencePlan(
            params,
            packing,
            batch_size,
            block,
            per_ct,
            steps,
            tuple(levels),
            value_bound,
            int_bits,
            frac_bits,
            network.input_dim,
            ranges,
            client_rotations,
        )
    raise PlanError(
        f"no {security}-bit parameters fit depth {depth} with {int_bits} integer and {frac_bits} "
        f"fractional bits and {block} slots per block: lower frac_bits, the batch size, or the depth"
    )


def base_primes(bits: int) -> tuple[int, ...]:
    """Bit sizes of the primes below the rescaling chain: one prime, or two when ``bits`` exceeds 60."""
    if bits <= MAX_PRIME_BITS:
        return (bits,)
    return ((bits + 1) // 2, bits // 2)


def single_record_rotation_steps(width: int) -> tuple[int, ...]:
    """Baby steps 1..n1-1 and giant steps n1, 2 n1, ... for the diagonal method on a width x width matrix."""
    n1 = single_packing.baby_steps(width)
    return tuple(sorted(set(range(1, n1)) | set(range(n1, width, n1))))


def packing_rotation_steps(packing: str, block: int, per_ct: int) -> tuple[int, ...]:
    """The rotation steps a packing needs: j blocks for j < per_ct (batch), the baby and giant steps of a
    block x block matrix (single record)."""
    if packing == "batch":
        return tuple(j * block for j in range(1, per_ct))
    return single_record_rotation_steps(block)


def _is_power_of_two(n: int) -> bool:
    return n >= 1 and n & (n - 1) == 0


def _packing_problem(plan: InferencePlan) -> str:
    slots = plan.params.slots
    if plan.packing not in ("batch", "single"):
        return f"packing {plan.packing!r} is neither 'batch' nor 'single'"
    sizes = (plan.batch_size, plan.block, plan.features_per_ciphertext, plan.input_dim)
    if min(sizes) < 1 or not _is_power_of_two(plan.block):
        return (f"batch_size {plan.batch_size}, block {plan.block}, features_per_ciphertext "
                f"{plan.features_per_ciphertext} and input_dim {plan.input_dim} must be positive, the block a "
                "power of two")
    if plan.packing == "batch" and plan.block * plan.features_per_ciphertext != slots:
        return (f"{plan.features_per_ciphertext} blocks of {plan.block} slots do not tile the {slots} slots "
                "exactly")
    if plan.packing == "batch" and plan.batch_size > plan.block:
        return f"a batch of {plan.batch_size} records does not fit a block of {plan.block} slots"
    if plan.packing == "single" and (plan.features_per_ciphertext != 1 or plan.block > slots):
        return (f"single-record packing holds one block of at most {slots} slots, not "
                f"{plan.features_per_ciphertext} of {plan.block}")
    if plan.packing == "single" and plan.input_dim > plan.block:
        return f"single-record packing: {plan.input_dim} features do not fit the block of {plan.block} slots"
    needed = packing_rotation_steps(plan.packing, plan.block, plan.features_per_ciphertext)
    if plan.rotation_steps != needed:
        return f"rotation steps {list(plan.rotation_steps)} are not the {list(needed)} this packing needs"
    allowed = ((), (plan.block,)) if plan.packing == "batch" and plan.features_per_ciphertext == 2 else ((),)
    if plan.client_rotations not in allowed:
        return f"client rotations {list(plan.client_rotations)} are not allowed by this packing"
    return ""


def _level_problem(plan: InferencePlan) -> str:
    bits, base = plan.params.moduli_bits, base_primes(plan.params.scale_bits + plan.int_bits + 1)
    if bits[: len(base)] != base or set(bits[len(base):]) - {plan.params.scale_bits}:
        return (f"the chain {list(bits)} is not the base primes {list(base)} (scale + integer bits + 1) "
                f"followed by primes of the scale's {plan.params.scale_bits} bits")
    chain = list(plan.layer_levels) + [plan.output_level]
    if chain[0] != plan.params.max_level:
        return f"the first layer is at level {chain[0]}, not at the top of the chain {plan.params.max_level}"
    if any(a - b not in (1, 2) for a, b in zip(chain, chain[1:], strict=False)):
        return (f"layer levels {list(plan.layer_levels)} do not step down by 1 or 2 per layer to the output "
                f"level {plan.output_level}")
    if len(plan.ranges) != len(plan.layer_levels) + 1:
        return f"{len(plan.ranges)} observed ranges for {len(plan.layer_levels)} layers (one per boundary)"
    return ""


def _precision_problem(plan: InferencePlan) -> str:
    p = plan.params
    if not (math.isfinite(plan.value_bound) and plan.value_bound > 0):
        return f"value_bound {plan.value_bound} is not a positive number"
    if any(not (math.isfinite(r) and r >= 0) for r in plan.ranges):
        return f"observed ranges {list(plan.ranges)} are not all non-negative numbers"
    needed = max(1, math.ceil(math.log2(max(plan.value_bound, 1.0))) + 1)
    if plan.int_bits < needed:
        return f"int_bits {plan.int_bits} cannot hold values up to value_bound {plan.value_bound:.3g}"
    if not 8 <= plan.frac_bits <= p.scale_bits:
        return f"frac_bits {plan.frac_bits} is outside [8, scale_bits = {p.scale_bits}]"
    base = sum(p.moduli_bits[: plan.output_level + 1])
    if base < p.scale_bits + plan.int_bits + 1:
        return (f"the base primes ({base} bits) cannot hold the scale 2^{p.scale_bits} and {plan.int_bits} "
                "integer bits")
    return ""


def plan_problem(plan: InferencePlan) -> str:
    """Why a plan read from a file is not one ``plan_inference`` could make ('' if it is).

    Checked: the packing is 'batch' or 'single' and its blocks fit the slots (batch: they tile them exactly
    and a block holds the batch); the rotation steps are exactly the packing's, client rotations only the
    one it allows; the layer levels step down the chain by 1 or 2 from the top level to the output level;
    one observed range per layer boundary; value_bound positive and held by int_bits; frac_bits within the
    scale; the base primes hold the scale and the integer part. Field types are the reader's job.
    """
    return _packing_problem(plan) or _level_problem(plan) or _precision_problem(plan)


def network_problem(network: PlainNetwork, plan: InferencePlan) -> str:
    """What makes ``network`` another network than the one ``plan`` was made for, '' if nothing: its number
    of layers, the levels each one consumes (the plan's levels step down by each layer's depth) and, for
    single-record packing, its widths (each within the block)."""
    if network.input_dim != plan.input_dim:
        return f"the network takes {network.input_dim} features, the plan was made for {plan.input_dim}"
    if len(network.layers) != len(plan.layer_levels):
        return f"the network has {len(network.layers)} layers, the plan was made for {len(plan.layer_levels)}"
    levels = list(plan.layer_levels) + [plan.output_level]
    for index, layer in enumerate(network.layers):
        try:
            depth = layer_depth(layer)
        except PlanError as exc:
            return str(exc)
        if depth != levels[index] - levels[index + 1]:
            return (f"layer {layer.name!r} consumes {depth} level(s), the plan gives layer {index + 1} "
                    f"{levels[index] - levels[index + 1]}")
    widths = [network.input_dim] + [lay.weights.shape[1] for lay in network.layers if isinstance(lay, Dense)]
    if plan.packing == "single" and max(widths) > plan.block:
        return f"a layer of width {max(widths)} does not fit the plan's block of {plan.block} slots"
    return ""
