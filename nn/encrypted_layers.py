"""The server's evaluation of one layer of the encrypted forward pass (``nn.encrypted.predict`` runs them in
turn): a Dense layer with batch packing (``dense``) or single-record packing (``dense_single``), and an
element-wise polynomial activation (``activation``). Each records its steps in the caller's ``StageTimer``.

A Dense layer's bias is added by ``Evaluator.dot_many`` as it writes the sums, in the partial sum that is
not rotated afterwards (rot(S + b) would rotate b too); an output without one gets a separate addition.
"""

from __future__ import annotations

import time
from collections import defaultdict
from typing import TYPE_CHECKING

import ckks

from . import batch_packing as bp
from . import single_packing as sp

if TYPE_CHECKING:  # the layers' types live with the model (nn.encrypted imports this module)
    from .encrypted import CompiledActivation, CompiledDense, EncryptedModel, StageTimer


def _bias_where_unrotated(prepared: dict, index: int,
                          parts: list[tuple[int, int]]) -> tuple[list[object | None], set[int]]:
    """The biases for ``dot_many`` when its outputs are partial sums keyed (m, shift), rotated by their shift
    afterwards: bias m goes into the unrotated sum (m, 0), as rot(S + b) would rotate b too. Also the
    outputs m that thereby get their bias (the others need a separate addition: ``_add_missing_biases``)."""
    biases = [prepared[("bias", index, m)] if shift == 0 else None for m, shift in parts]
    return biases, {m for m, shift in parts if shift == 0}


def _add_missing_biases(layer: CompiledDense, sums: list[ckks.Ciphertext], biased: set[int],
                        ev: ckks.Evaluator) -> list[ckks.Ciphertext]:
    """sums[m] + b_m for the outputs m whose bias no ``dot_many`` added (those without an unrotated part)."""
    return [s if m in biased else ev.add(s, layer.biases[m]) for m, s in enumerate(sums)]


def dense(
    model: EncryptedModel,
    index: int,
    cts: list[ckks.Ciphertext],
    ev: ckks.Evaluator,
    prepared: dict,
    timer: StageTimer,
    stage: str,
) -> list[ckks.Ciphertext]:
    """Block-diagonal Dense layer: rotate the inputs, or (fewer outputs) the partial sums; with ciphertext
    weights, one relinearization per output ciphertext (lazy), plus one per rotated partial sum."""
    layer = model.layers[index]
    block = model.plan.block
    by_output = bp.rotate_outputs(layer.inputs, layer.outputs)
    rotated: dict[tuple[int, int], ckks.Ciphertext] = {}
    if not by_output:
        start = time.perf_counter()
        for k, _m, j in layer.diagonals:
            if (k, j) in rotated:
                continue
            if j == 0:
                rotated[(k, j)] = cts[k]
            elif len(cts) > layer.inputs:  # the client sent in_k rotated by j*block after the inputs
                sent = model.plan.client_rotations.index(j * block)
                rotated[(k, j)] = cts[(sent + 1) * layer.inputs + k]
            else:
                rotated[(k, j)] = ev.rotate(cts[k], j * block)
        timer.add(f"{stage} rotate", start)
    start = time.perf_counter()
    if by_output:  # out_m = sum_j rot(S_mj, j*block), S_mj = sum_k in_k * pre-rotated diagonal
        parts = sorted({(m, j) for _k, m, j in layer.diagonals})
        biases, biased = _bias_where_unrotated(prepared, index, parts)
        sums = ev.dot_many(cts, [[(k, prepared[(index, k, m, j)]) for k, mm, jj in layer.diagonals
                                  if (mm, jj) == (m, j)] for m, j in parts], biases)
        timer.add(f"{stage} multiply-accumulate", start)
        start = time.perf_counter()
        by_shift: dict[int, list[int]] = defaultdict(list)  # the partial sums rotated by each j * block
        for n, (_m, j) in enumerate(parts):
            if j:
                by_shift[j].append(n)
        for j, which in by_shift.items():
            parts_j = [sums[n] for n in which]  # a rotation needs size-2 ciphertexts
            rotated_parts = ev.rotate_many(ev.relinearize_many(parts_j) if parts_j[0].size == 3 else parts_j,
                                           j * block)
            for n, part in zip(which, rotated_parts, strict=True):
                sums[n] = part
        timer.add(f"{stage} rotate", start)
        accs: dict[int, ckks.Ciphertext] = {}
        for (m, _j), part in zip(parts, sums, strict=True):
            accs[m] = part if m not in accs else ev.add(accs[m], part)
        sums = [accs[m] for m in range(layer.outputs)]
    else:
        position = {key: n for n, key in enumerate(rotated)}
        sums = ev.dot_many(list(rotated.values()), [
            [(position[(k, j)], prepared[(index, k, mm, j)]) for k, mm, j in layer.diagonals if mm == m]
            for m in range(layer.outputs)], [prepared[("bias", index, m)] for m in range(layer.outputs)])
        biased = set(range(layer.outputs))
        timer.add(f"{stage} multiply-accumulate", start)
    start = time.perf_counter()
    sums = _add_missing_biases(layer, sums, biased, ev)
    timer.add(f"{stage} multiply-accumulate", start)
    start = time.perf_counter()
    if sums[0].size == 3:  # lazy relinearization: once per output ciphertext, after the whole sum
        outputs = ev.relinearize_and_rescale_many(sums)
        timer.add(f"{stage} relinearize + rescale", start)
    else:
        outputs = ev.rescale_many(sums)
        timer.add(f"{stage} rescale", start)
    return outputs


def dense_single(
    model: EncryptedModel,
    index: int,
    cts: list[ckks.Ciphertext],
    ev: ckks.Evaluator,
    prepared: dict,
    timer: StageTimer,
    stage: str,
) -> list[ckks.Ciphertext]:
    """M x + bias = sum_g rot(sum_b diag'_{g,b} * rot(x, b), g n1) + bias (baby-step / giant-step diagonals,
    b the baby step); the bias is added with the giant step g = 0, the one sum not rotated."""
    layer = model.layers[index]
    n1 = sp.baby_steps(model.plan.block)
    start = time.perf_counter()
    babies = {b: cts[0] if b == 0 else ev.rotate(cts[0], b) for b in sorted({b for _g, b in layer.diagonals})}
    timer.add(f"{stage} rotate", start)
    giants = sorted({g for g, _b in layer.diagonals})
    position = {b: n for n, b in enumerate(babies)}
    start = time.perf_counter()
    biases, biased = _bias_where_unrotated(prepared, index, [(0, g) for g in giants])  # one output, m = 0
    inners = ev.dot_many(list(babies.values()), [
        [(position[b], prepared[(index, g, b)]) for gg, b in layer.diagonals if gg == g] for g in giants],
        biases)
    timer.add(f"{stage} multiply-accumulate", start)
    total = None
    for g, inner in zip(giants, inners, strict=True):
        if g:
            start = time.perf_counter()
            if inner.size == 3:  # a rotation needs a size-2 ciphertext
                inner = ev.relinearize(inner)
            inner = ev.rotate(inner, g * n1)
            timer.add(f"{stage} rotate", start)
        total = inner if total is None else ev.add(total, inner)
    start = time.perf_counter()
    [total] = _add_missing_biases(layer, [total], biased, ev)
    out = ev.relinearize_and_rescale(total) if total.size == 3 else ev.rescale(total)
    timer.add(f"{stage} rescale", start)
    return [out]


def activation(
    layer: CompiledActivation, cts: list[ckks.Ciphertext], ev: ckks.Evaluator, timer: StageTimer, stage: str
) -> list[ckks.Ciphertext]:
    """c0 + c1 x + c2 x^2 on every ciphertext; each step over all of them at once (``Evaluator.*_many``)."""
    c = layer.coeffs + (0.0,) * (3 - len(layer.coeffs))
    start = time.perf_counter()
    if c[2] == 0.0:  # linear: c1 x + c0
        ys = ev.rescale_many([ev.multiply_scalar(x, c[1]) for x in cts])
    elif c[:2] == (0.0, 0.0) and c[2] == 1.0:  # x^2
        ys = ev.relinearize_and_rescale_many([ev.square(x) for x in cts])
    else:  # x (c2 x + c1) + c0
        inners = [ev.add_scalar(y, c[1]) for y in ev.rescale_many([ev.multiply_scalar(x, c[2]) for x in cts])]
        ys = ev.relinearize_and_rescale_many([ev.multiply(ev.drop_level(x, inner.level), inner)
                                              for x, inner in zip(cts, inners, strict=True)])
    out = [ev.add_scalar(y, c[0]) if c[0] else y for y in ys]
    timer.add(f"{stage} activation", start)
    return out
