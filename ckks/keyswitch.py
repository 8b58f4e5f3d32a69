"""Hybrid key switching (Han-Ki, CT-RSA 2020, section 3; digits of CHKKS's RNS gadget).

Given d at level l (NTT form over Q_l) and a switching key from s' to s, return (u_0, u_1) over Q_l with
u_0 + u_1 * s ~ d * s'. Steps:
  1. ModUp: for each digit j, the residues of d on the digit's primes D_j are extended to all of Q_l * P by
     fast base conversion (CHKKS 2018), giving d_j ~ [d]_{Q_j} + (multiple of Q_j).
  2. Inner product with the key over Q_l * P: (v_0, v_1) = sum_j d_j * k_j; this is P * d * s' + small noise.
  3. ModDown: divide by P and round back to Q_l, which also divides the key's noise by P.
"""

from __future__ import annotations

import numpy as np

from . import rns
from .basis_conversion import fast_base_convert, mod_down
from .keys import SwitchingKey
from .ntt import ntt_forward, ntt_inverse
from .params import Parameters


def key_switch(d: np.ndarray, level: int, key: SwitchingKey, params: Parameters) -> np.ndarray:
    """(u_0, u_1) over Q_level, NTT form, shape (2, level + 1, N), with u_0 + u_1 s ~ d s'."""
    n = params.ring_degree
    n_q = level + 1
    n_all_q = len(params.moduli)
    q_moduli = params.moduli[:n_q]
    qp_moduli = q_moduli + params.special_moduli
    qp = rns.rns_basis(qp_moduli, n)
    # Rows of the key that belong to Q_level * P: the first n_q chain primes and the special primes.
    key_rows = np.r_[0:n_q, n_all_q : n_all_q + len(params.special_moduli)]
    d_coeff = d.copy()
    ntt_inverse(d_coeff, rns.rns_basis(q_moduli, n).tables)
    acc = np.zeros((2, len(qp_moduli), n), dtype=np.uint64)
    alpha = params.digit_size
    for j in range(params.digits):
        digit = list(range(j * alpha, min((j + 1) * alpha, n_q)))
        if not digit:
            break
        others = [i for i in range(len(qp_moduli)) if i not in digit]
        extended = np.empty((len(qp_moduli), n), dtype=np.uint64)
        extended[digit] = d[digit]
        converted = fast_base_convert(d_coeff[digit], tuple(q_moduli[i] for i in digit),
                                      tuple(qp_moduli[i] for i in others))
        ntt_forward(converted, tuple(qp.tables[i] for i in others))
        extended[others] = converted
        k = key.data[j][:, key_rows]
        rns.mul_add_into(acc[0], extended, k[0], qp)
        rns.mul_add_into(acc[1], extended, k[1], qp)
    q_basis = rns.rns_basis(q_moduli, n)
    p_basis = rns.rns_basis(params.special_moduli, n)
    return np.stack([mod_down(acc[0], q_basis, p_basis), mod_down(acc[1], q_basis, p_basis)])
