"""The one exception family a user can act on.

The CLI catches :class:`Lenet5Error` and prints its message as a single line with a
non-zero exit; anything else is a bug and keeps its traceback.
"""


class Lenet5Error(Exception):
    """A user-facing problem: bad data, bad option, bad weights, a diverged run."""


class DataError(Lenet5Error):
    """A data file is missing, corrupt, truncated or has the wrong shape."""


class ChecksumError(DataError):
    """A file's md5 does not match the published sum."""


class WeightsError(Lenet5Error):
    """Weights are missing, unreadable or built for a different architecture."""


class NonFiniteLossError(Lenet5Error):
    """The training loss became NaN or infinite."""
