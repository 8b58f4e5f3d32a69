"""The errors a caller of ``ckks`` can hit, one class per way of misusing the scheme.

Every error says what happened and what to do; none is raised by ``assert``.
"""


class CkksError(Exception):
    """Base class of every error raised by ``ckks``."""


class ParameterError(CkksError, ValueError):
    """Parameters are malformed, inconsistent, or below the requested security level."""


class LevelMismatchError(CkksError, ValueError):
    """Two operands of a binary operation live at different levels."""


class ScaleMismatchError(CkksError, ValueError):
    """Two operands of an addition carry different scales."""


class OutOfLevelsError(CkksError, ValueError):
    """A rescale or multiplication was asked for at level 0: the modulus chain is used up."""


class MissingKeyError(CkksError, KeyError):
    """An operation needs an evaluation key (relinearization or Galois) that was not supplied."""

    def __str__(self) -> str:  # KeyError would otherwise print the message with quotes
        return str(self.args[0]) if self.args else ""


class SerializationError(CkksError, ValueError):
    """A serialized buffer is truncated, corrupted, of the wrong type, or from other parameters."""


class ValueRangeError(CkksError, ValueError):
    """Input values are not finite, or too large for the scale and modulus they must fit in."""
