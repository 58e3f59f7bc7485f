"""refimpl's exceptions.

Every error a user can cause names the offending value, the limit it broke and the fix. Each class also
derives from the built-in exception a Python user would reach for (``ValueError``, ``TypeError``,
``FileNotFoundError``), so ``except ValueError`` keeps working.
"""


class RefimplError(Exception):
    """Base class of every exception refimpl raises on purpose."""


class ConfigError(RefimplError, ValueError):
    """A config.json value refimpl cannot honour (unknown activation, unsupported option, bad JSON)."""


class CheckpointError(RefimplError, ValueError):
    """A checkpoint that does not match the model: missing, unexpected or mis-shaped tensors, corrupt files."""


class CheckpointNotFoundError(RefimplError, FileNotFoundError):
    """A checkpoint directory or file that does not exist."""


class InputError(RefimplError, ValueError):
    """A forward or generate argument outside what the model accepts (ids, shapes, lengths, options)."""


class InputTypeError(RefimplError, TypeError):
    """An argument of the wrong type (a float where ids are expected, bytes where text is expected)."""


class TokenizerError(RefimplError, ValueError):
    """A tokenizer file that is missing, malformed, or a tokenizer option refimpl cannot honour."""


class WeightsDownloadError(RefimplError, RuntimeError):
    """A registered checkpoint that could not be fetched or failed its sha256 check."""
