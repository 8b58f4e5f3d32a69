"""The named errors of the plaintext side and of the workspace: a bad model directory, a bad table or x/y
file, a workspace file that is missing or of another client.

All are ``ValueError`` subclasses, so the command line turns them into one line of text and exit code 2.
They live here, apart from the modules that raise them, so that every loader module (``nn.model``,
``nn.keras_weights``, ``nn.table``, ``nn.data``) and both the server (``nn.server``) and the workspace steps
(``nn.workflow``) can raise them without importing each other; ``nn.model``, ``nn.data`` and ``nn.workflow``
re-export them (``from nn.model import ModelFormatError``, ``workflow.WorkflowError`` keep working).

``refuse_complex`` is the check every entry of numbers into the network makes (records, weights, scores):
CKKS slots are complex, but the network is real and uses only their real parts.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt


class ModelFormatError(ValueError):
    """A model directory is missing a file, or holds a layer, activation or weight this network cannot run."""


class DataSchemaError(ValueError):
    """A table or an x/y file does not have the columns, values or shapes the pipeline expects."""


def refuse_complex(values: npt.ArrayLike, what: str, error: type[ValueError]) -> np.ndarray:
    """``values`` as a numpy array, refused by name if its dtype is complex.

    The network computes on real numbers: each record value, weight and score travels in the real part of a
    CKKS slot (the slots hold N/2 complex numbers; nn leaves the imaginary parts 0). Converting complex values
    to float64 would keep their real parts without a word; they are refused instead. The dtype decides, as
    in ``ckks.Encoder``: ``[1 + 0j]`` is complex.

    Raises:
        error: ``values`` have a complex dtype; the message names ``what``.
    """
    array = np.asarray(values)
    if np.iscomplexobj(array):
        raise error(f"{what} are complex numbers (dtype {array.dtype}): the network computes on real "
                    "numbers only (each value travels in the real part of a CKKS slot), so their imaginary "
                    "parts would be lost; give real values")
    return array


class WorkflowError(ValueError):
    """A workspace file is missing, from another context, or the step is called out of order."""
