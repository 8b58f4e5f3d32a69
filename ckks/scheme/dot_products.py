"""Dot products with fixed weights: sum_t c_t * w_t for one output (``dot``) or many (``dot_many``).

A weight that multiplies many ciphertexts (a Dense layer's diagonal) is prepared once (``prepare``): a
plaintext weight gets its Shoup companions floor(w * 2^64 / q_i), which make each product a Shoup
multiplication; a ciphertext weight needs none, as its products take the companions of the input
ciphertexts (see ``ring.dot_kernels`` for why). A layer's weights are stacked in one array (``prepare_many``)
that the kernel reads in place. The kernel
(``ring.dot_kernels.dot_plain_shoup`` / ``dot_tensor_shoup``) keeps a chunk of every output's sums in the L1
cache while the terms stream by, so each weight is read once and no partial sum goes back to memory.
``dot_many`` can add a bias to each output (a Dense layer's b) as the kernel writes the sums: bias + sum,
without a separate addition reading and writing the whole output again.

``DotProducts`` holds these methods of ``Evaluator``, which inherits them; they use its operand checks
(``_check``, ``_ct``, ``_check_pair``), its bases (``_basis``) and its result constructor (``_product``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

from ..errors import LevelMismatchError, ParameterError, ScaleMismatchError
from ..ring import dot_kernels, rns
from ..rlwe.ciphertext import Ciphertext, Plaintext


@dataclass(frozen=True, eq=False)
class PreparedGroup:
    """Fixed operands of one kind and level stacked in one array, (count, L, N) for plaintexts and
    (count, 2, L, N) for ciphertexts, with the plaintexts' Shoup companions (None for ciphertexts, and for
    biases stacked with ``companions=False``; made by ``Evaluator.prepare_many``)."""

    data: np.ndarray
    shoup: np.ndarray | None


@dataclass(frozen=True)
class PreparedOperand:
    """A fixed plaintext or ciphertext for repeated products; a plaintext with the Shoup companions of its
    limbs (``shoup``; None for a ciphertext, whose products use the input's companions, and for a bias
    stacked with ``companions=False``).

    Made by ``Evaluator.prepare`` (alone) or ``prepare_many`` (row ``index`` of a ``group``, which
    ``dot_many`` reads in place); ``dot`` then multiplies by it with one Shoup multiplication per coefficient.
    """

    source: Ciphertext | Plaintext
    shoup: np.ndarray | None
    group: PreparedGroup | None = None
    index: int = 0

    @property
    def level(self) -> int:
        return self.source.level

    @property
    def scale(self) -> float:
        return self.source.scale


# A bias of dot_many: an operand, a prepared one (read in place from its group), or None (no bias).
Bias = Ciphertext | Plaintext | PreparedOperand | None


def _source(bias: Bias) -> Ciphertext | Plaintext | None:
    """The operand a bias stands for (a prepared one's source)."""
    return bias.source if isinstance(bias, PreparedOperand) else bias


# Two scales are "equal" if they agree to this relative tolerance (they are floats tracked exactly).
SCALE_TOLERANCE = 2.0**-40


class DotProducts:
    """The dot-product methods of ``Evaluator`` (see the module docstring)."""

    def _check_weight(self, op: str, operand: Ciphertext | Plaintext) -> None:
        self._check(op, operand)
        if isinstance(operand, Ciphertext) and operand.size != 2:
            raise ParameterError(f"{op}: a ciphertext weight has size {operand.size}; relinearize it first "
                                 "(the dot products multiply size-2 ciphertexts)")

    def prepare(self, operand: Ciphertext | Plaintext) -> PreparedOperand:
        """A weight that will multiply many ciphertexts (see ``dot``): for a plaintext, floor(w * 2^64 / q_i)
        precomputed.

        Raises:
            ParameterError: not a plaintext or size-2 ciphertext of these parameters.
        """
        self._check_weight("prepare", operand)
        return PreparedOperand(operand, self._companions(operand, operand.data))

    def prepare_many(self, operands: list[Ciphertext | Plaintext],
                     companions: bool = True) -> list[PreparedOperand]:
        """``prepare`` for many weights of one kind and level, stacked in one ``PreparedGroup`` that
        ``dot_many`` reads without copying (the returned operands' data are views into it).

        ``companions=False`` stacks plaintexts without Shoup companions: for biases, which ``dot_many`` adds
        and never multiplies (ciphertexts have none either way).

        Raises:
            ParameterError: no operand, operands of mixed kinds, not of these parameters, or a ciphertext of
                size != 2.
            LevelMismatchError: operands at different levels.
        """
        if not operands:
            raise ParameterError("prepare_many: no operand")
        for operand in operands:
            self._check_weight("prepare_many", operand)
        if len({type(o) for o in operands}) != 1:
            raise ParameterError("prepare_many: operands must be all plaintexts or all ciphertexts")
        levels = sorted({o.level for o in operands})
        if len(levels) != 1:
            raise LevelMismatchError(f"prepare_many: operands at levels {levels}; prepare each level apart")
        data = np.stack([o.data for o in operands])
        group = PreparedGroup(data, self._companions(operands[0], data) if companions else None)
        return [PreparedOperand(replace(o, data=data[i]), None if group.shoup is None else group.shoup[i],
                                group, i) for i, o in enumerate(operands)]

    def _companions(self, operand: Ciphertext | Plaintext, data: np.ndarray) -> np.ndarray | None:
        """The Shoup companions of ``data`` when ``operand`` is a plaintext; None for a ciphertext."""
        if isinstance(operand, Ciphertext):
            return None
        return rns.shoup_companions(data, self._basis(operand.level))

    def dot(self, cts: list[Ciphertext], weights: list[PreparedOperand]) -> Ciphertext:
        """sum_i cts[i] * weights[i] in one pass: size 2 for plaintext weights, 3 (not relinearized: lazy
        relinearization, once for the whole sum) for ciphertext weights. (``dot_many`` with one output.)

        Raises:
            ParameterError: empty or unequal lists, mixed weight kinds, or ciphertexts of size != 2.
            LevelMismatchError / ScaleMismatchError: terms at different levels or product scales.
        """
        if not cts or len(cts) != len(weights):
            raise ParameterError(f"dot: need equal, non-empty lists, got {len(cts)} ciphertexts and "
                                 f"{len(weights)} weights")
        return self._dot_many("dot", cts, [list(enumerate(weights))])[0]

    def dot_many(self, cts: list[Ciphertext], terms: list[list[tuple[int, PreparedOperand]]],
                 biases: list[Bias] | None = None) -> list[Ciphertext]:
        """out[r] = biases[r] + sum over (i, w) in terms[r] of cts[i] * w, for every output r, in one kernel
        call.

        Size 2 for plaintext weights, 3 for ciphertext weights (relinearize the sum once: lazy
        relinearization). Every term shares one level and one kind of weight; the terms of one output share
        one product scale. Weights from one ``prepare_many`` group are read in place; others are stacked.
        ``biases`` (optional, one per output, None for none): plaintexts or size-2 ciphertexts, all of one
        kind, at the terms' level and each at its output's product scale; the kernel adds each as it writes
        its output's sums, so the result equals ``add(dot, bias)`` without the add's pass over memory.
        Biases of one ``prepare_many`` group are read in place (stack them with ``companions=False``: they
        need none); others are stacked.

        Raises:
            ParameterError: no output, an output without terms, an index outside ``cts``, weights not
                prepared (with companions, for plaintexts) or of mixed kinds, ciphertexts of size != 2, or
                biases not one per output, of mixed kinds, of size 3 or of other parameters.
            LevelMismatchError / ScaleMismatchError: terms or biases at different levels, or an output's
                terms and bias at different product scales.
        """
        return self._dot_many("dot_many", cts, terms, biases)

    def _dot_many(self, op: str, cts: list[Ciphertext], terms: list[list[tuple[int, PreparedOperand]]],
                  biases: list[Bias] | None = None) -> list[Ciphertext]:
        """``dot_many``, its errors naming ``op``."""
        if not terms or any(not row for row in terms):
            raise ParameterError(f"{op}: every output needs at least one term")
        pairs = [pair for row in terms for pair in row]
        if any(not (isinstance(i, (int, np.integer)) and 0 <= i < len(cts)) for i, _ in pairs):
            raise ParameterError(f"{op}: a term names a ciphertext outside the {len(cts)} given")
        weights = [w for _, w in pairs]
        if (not all(isinstance(w, PreparedOperand) for w in weights)
                or len({type(w.source) for w in weights}) != 1):
            raise ParameterError(f"{op}: weights must all be prepared (Evaluator.prepare) and of one kind")
        if isinstance(weights[0].source, Plaintext) and any(w.shoup is None for w in weights):
            raise ParameterError(f"{op}: a plaintext weight was prepared without its Shoup companions "
                                 "(prepare_many(..., companions=False) is for biases)")
        for w in weights:
            self._check_weight(op, w.source)
        level = cts[pairs[0][0]].level
        for i, w in pairs:
            ct = self._ct(op, cts[i])
            if ct.level != level:
                raise LevelMismatchError(f"{op}: terms are at levels {level} and {ct.level}; bring them to "
                                         "one level with drop_level first")
            self._check_pair(op, ct, w.source, same_scale=False)
            if ct.size != 2:
                raise ParameterError(f"{op}: a ciphertext has size {ct.size}; relinearize first")
        scales = []
        for row in terms:
            scale = cts[row[0][0]].scale * row[0][1].scale
            if any(abs(cts[i].scale * w.scale - scale) > SCALE_TOLERANCE * scale for i, w in row):
                raise ScaleMismatchError(f"{op}: the terms' product scales differ; encode every weight at "
                                         "one scale")
            scales.append(scale)
        bias, bias_index, bias_sources = self._stacked_biases(op, biases, cts[pairs[0][0]], scales)
        plain = isinstance(weights[0].source, Plaintext)
        group = weights[0].group
        if group is not None and all(w.group is group for w in weights):
            w_data, w_shoup, w_index = group.data, group.shoup, [w.index for w in weights]
        else:  # weights of several groups, or prepared one by one: stack the distinct ones
            distinct = list({id(w): w for w in weights}.values())
            position = {id(w): n for n, w in enumerate(distinct)}
            w_data = np.stack([w.source.data for w in distinct])
            w_shoup = np.stack([w.shoup for w in distinct]) if plain else None
            w_index = [position[id(w)] for w in weights]
        used = sorted({i for i, _ in pairs})
        x = rns.stack([cts[i].data for i in used])  # the copy on the kernels' threads
        x_index = {i: n for n, i in enumerate(used)}
        flat = iter(zip((x_index[i] for i, _ in pairs), w_index, strict=True))
        csr = [[next(flat) for _ in row] for row in terms]
        basis = self._basis(level)
        out = (dot_kernels.dot_plain_shoup(x, w_data, w_shoup, csr, basis, bias, bias_index) if plain
               else dot_kernels.dot_tensor_shoup(x, w_data, csr, basis, bias, bias_index))
        return [self._product(op, out[r], level, scale,
                              any(cts[i].complex_slots or w.source.complex_slots for i, w in row)
                              or (b is not None and b.complex_slots))
                for r, (scale, row, b) in enumerate(zip(scales, terms, bias_sources, strict=True))]

    def _stacked_biases(self, op: str, biases: list[Bias] | None, first_input: Ciphertext, scales: list[float]
                        ) -> tuple[np.ndarray | None, list[int] | None, list[Ciphertext | Plaintext | None]]:
        """The biases of ``dot_many`` as the kernel reads them, (B, C, L, N) and each output's row (-1: no
        bias), and the operand of each output's bias (None: none); checked against ``first_input`` (the
        level, the parameters) and the outputs' product ``scales``."""
        if biases is None:
            return None, None, [None] * len(scales)
        if len(biases) != len(scales):
            raise ParameterError(f"{op}: {len(biases)} biases for {len(scales)} outputs; give one per output "
                                 "(None for none)")
        sources = [_source(b) for b in biases]
        given = [b for b in biases if b is not None]
        if not given:
            return None, None, sources
        kinds = {type(source) for source in sources if source is not None}
        if len(kinds) != 1 or not issubclass(kinds.pop(), (Ciphertext, Plaintext)):
            raise ParameterError(f"{op}: biases must be all plaintexts or all ciphertexts (or None)")
        for source, scale in zip(sources, scales, strict=True):
            if source is None:
                continue
            self._check_pair(op, first_input, source, same_scale=False)
            if isinstance(source, Ciphertext) and source.size != 2:
                raise ParameterError(f"{op}: a bias ciphertext has size {source.size}; relinearize it first")
            if abs(source.scale - scale) > SCALE_TOLERANCE * scale:
                raise ScaleMismatchError(f"{op}: a bias has scale 2^{math.log2(source.scale):.6f} and its "
                                         f"output 2^{math.log2(scale):.6f}; encode the bias at the product's "
                                         "scale")
        group = given[0].group if isinstance(given[0], PreparedOperand) else None
        if group is not None and all(isinstance(b, PreparedOperand) and b.group is group for b in given):
            data, rows = group.data, {id(b): b.index for b in given}
        else:  # biases of several groups, or not prepared: stack them
            data, rows = np.stack([_source(b).data for b in given]), {id(b): n for n, b in enumerate(given)}
        if isinstance(_source(given[0]), Plaintext):  # one component
            data = data.reshape(data.shape[0], 1, *data.shape[1:])
        return data, [-1 if b is None else rows[id(b)] for b in biases], sources
