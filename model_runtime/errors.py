"""The errors EMOTE reports, each with a machine-readable `kind` and a sentence for the user.

`EmoteError` is the one base: the UI catches it and shows `message`. `EmoteInputError` is bad input
(raised by the runtime and the Blender side alike); `RuntimeFailure` is the runtime process
failing as the Blender side sees it; the set-up, export and command-line errors derive from
them. Stdlib only, so both sides import it. Exceptions that only steer control flow (serve's
`Cancelled`, batch's `BatchInterrupted`) are not errors for the user and stay outside.
"""

from __future__ import annotations

import contextlib
import warnings
from typing import Callable


class EmoteError(Exception):
    """Base of every error EMOTE reports: `kind` names the problem, `message` says what to do."""

    def __init__(self, kind: str, message: str):
        super().__init__(message)
        self.kind = kind
        self.message = message

    def __str__(self) -> str:  # pragma: no cover - trivial
        return self.message


class EmoteInputError(EmoteError):
    """Bad input from the user: `kind` names the problem, the message says what to do about it.

    Kinds in use: missing_file, unreadable_file, unsupported_format, empty_audio, too_short,
    bad_samples, bad_request, bad_head_model, unsafe_pickle, bad_checkpoint, no_default_model,
    missing_dependency, unwritable_output, folder_not_ours, bad_game_data (training corpora).
    """


class RuntimeFailure(EmoteError):
    """The runtime reported an error, crashed, hung or was cancelled; `kind` says which
    (runtime_crashed, runtime_hung, cancelled, missing_runtime, bad_result, or the kind the
    runtime reported)."""


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
