"""The named errors of the plaintext side and of the workspace: a bad model directory, a bad table or x/y
file, a workspace file that is missing or of another client.

All are ``ValueError`` subclasses, so the command line turns them into one line of text and exit code 2.
They live here, apart from the modules that raise them, so that every loader module (``nn.model``,
``nn.keras_weights``, ``nn.table``, ``nn.data``) and both the server (``nn.server``) and the workspace steps
(``nn.workflow``) can raise them without importing each other; ``nn.model``, ``nn.data`` and ``nn.workflow``
re-export them (``from nn.model import ModelFormatError``, ``workflow.WorkflowError`` keep working).
"""

from __future__ import annotations


class ModelFormatError(ValueError):
    """A model directory is missing a file, or holds a layer, activation or weight this network cannot run."""


class DataSchemaError(ValueError):
    """A table or an x/y file does not have the columns, values or shapes the pipeline expects."""


class WorkflowError(ValueError):
    """A workspace file is missing, from another context, or the step is called out of order."""
