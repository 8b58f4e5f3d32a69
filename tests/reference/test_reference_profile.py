"""Reading HElayers' model description and backend names (crafted inputs with hand-computed answers)."""

from __future__ import annotations

import pytest

from reference.errors import HelayersInputError
from reference.profile import weight_tile_counts

# As NeuralNet.to_string() prints them for a 14 -> 16 -> 8 -> 1 network, tile layout 1 x 2 x 4096.
DESCRIPTION = """
[1] Fully_Connected (dense) outScale=1
\tWeights:
\t\t[14, 16/2, */4096] (Encrypted)
\t\t[1, 16/2, */4096] (Encrypted)
[3] Fully_Connected (dense_1) outScale=1
\t\t[8, 16/2, */4096] (Encrypted)
\t\t[8, */2, */4096] (Encrypted)
[5] Fully_Connected (dense_2) outScale=1
\t\t[8, 1/2, */4096] (Encoded)
"""


def test_weight_tiles_counted_per_dimension():
    # 14*8 + 1*8 + 8*8 + 8*1 ciphertexts, 8*1 plaintexts
    assert weight_tile_counts(DESCRIPTION) == {"ciphertexts": 192, "plaintexts": 8}


def test_unreadable_shape_gives_none():
    assert weight_tile_counts("[3/2, x7, */16] (Encrypted)") is None


@pytest.mark.helayers
@pytest.mark.parametrize("name", ["HElib", "", "SEAL,TFHE"])
def test_unknown_backend_names(name):
    from reference import load_pyhelayers
    from reference.profile import resolve_backends

    with pytest.raises(HelayersInputError):
        resolve_backends(load_pyhelayers(), name)


@pytest.mark.helayers
def test_backend_names_resolve_in_priority_order():
    from reference import load_pyhelayers
    from reference.profile import resolve_backends

    present, absent = resolve_backends(load_pyhelayers(), "paper,lattigo,OpenFHE_CKKS,seal")
    assert present == ["SEAL_CKKS", "Lattigo_CKKS", "OpenFHE_CKKS"]
    assert absent == ["HEaaN_CKKS"]
