"""The one exception type the runtime raises for bad input, with a machine-readable kind."""

from __future__ import annotations

import contextlib
import warnings
from typing import Callable


class EmoteInputError(Exception):
    """Bad input from the user: `kind` names the problem, the message says what to do about it.

    Kinds in use: missing_file, unreadable_file, unsupported_format, empty_audio, too_short,
    bad_samples, bad_request, bad_head_model, unsafe_pickle, bad_checkpoint, no_default_model,
    missing_dependency, unwritable_output, folder_not_ours.
    """

    def __init__(self, kind: str, message: str):
        super().__init__(message)
        self.kind = kind
        self.message = message

    def __str__(self) -> str:  # pragma: no cover - trivial
        return self.message


class EmoteWarning(UserWarning):
    """Something the user should know that does not stop the run (e.g. a WAV cut short).

    The command line reports it as a `{"event": "warning", "message": ...}` line or on stderr."""


@contextlib.contextmanager
def warnings_to(sink: Callable[[str], None]):
    """Route EmoteWarning (e.g. a WAV cut short) to `sink` as one sentence; others as usual."""
    previous = warnings.showwarning

    def show(message, category, filename, lineno, file=None, line=None):
        if issubclass(category, EmoteWarning):
            sink(str(message))
        else:
            previous(message, category, filename, lineno, file, line)

    with warnings.catch_warnings():
        warnings.simplefilter("always", EmoteWarning)
        warnings.showwarning = show
        yield
