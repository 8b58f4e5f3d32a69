"""The errors a caller of ``reference`` can hit: HElayers missing, a model it cannot take, bad input.

None of these needs pyhelayers to be importable, so callers can catch them whether or not it is installed.
"""


class HelayersUnavailable(RuntimeError):
    """pyhelayers (or a requested HElayers backend) is not installed in this environment."""


class HelayersModelError(ValueError):
    """HElayers cannot load or compile a model: the message names the file and quotes HElayers."""


class HelayersInputError(ValueError):
    """Arguments or data given to the HElayers flow are malformed (shape, batch size, backend name...)."""


class HelayersFlowError(RuntimeError):
    """A step of the client/server flow broke one of its guarantees (e.g. a secret key reached the server)."""
