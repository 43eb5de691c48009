"""Errors that carry a message meant for the person who sent the input.

Every entry point (CLI, chat adapters, workers) shows `str(error)` as one line and
never a traceback for these. `code` is a stable machine-readable reason that job
events and metrics use.
"""


class InputError(Exception):
    """The user's input cannot be used: bad media, no face, over a limit.

    The CLI exits with status 2 for these.
    """

    code = "bad_input"

    def __init__(self, message: str, code: str | None = None) -> None:
        super().__init__(message)
        if code is not None:
            self.code = code


class NoFaceError(InputError):
    code = "no_face"


class UnsupportedMediaError(InputError):
    code = "unsupported_media"


class LimitExceededError(InputError):
    code = "limit_exceeded"


class OutputTooLargeError(Exception):
    """The result cannot be made to fit the byte budget, even at the smallest setting."""

    code = "output_too_large"


class DeadlineExceededError(LimitExceededError):
    """Heavy work on someone's input ran past its deadline and was stopped."""

    code = "deadline"
