"""The named errors of the plaintext side: a bad model directory, and a bad table or x/y file.

Both are ``ValueError`` subclasses, so the command line turns them into one line of text and exit code 2.
They live here, apart from the loaders that raise them, so that every loader module (``nn.model``,
``nn.keras_weights``, ``nn.table``, ``nn.data``) can raise either without importing another loader;
``nn.model`` and ``nn.data`` re-export them (``from nn.model import ModelFormatError`` keeps working).
"""

from __future__ import annotations


class ModelFormatError(ValueError):
    """A model directory is missing a file, or holds a layer, activation or weight this network cannot run."""


class DataSchemaError(ValueError):
    """A table or an x/y file does not have the columns, values or shapes the pipeline expects."""
