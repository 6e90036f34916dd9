"""Errors that reach the user as one line (never a traceback)."""


class FaceanonError(Exception):
    """Base class: the message is shown to the user as is."""


class UsageError(FaceanonError):
    """Bad command-line or API arguments."""


class InputError(FaceanonError):
    """An input file that cannot be used; the message names the file and the reason."""

    def __init__(self, path, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason


class ProcessingError(FaceanonError):
    """A stage failed on an input (e.g. detection crashed); fail closed: nothing is written."""


class CannotAnonymize(Exception):
    """Raised by a method that cannot run on one face (e.g. no landmarks); the pipeline then
    applies its fallback filter to that face and reports the reason. Not a user-facing error."""
