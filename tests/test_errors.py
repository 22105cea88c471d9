"""One error base: every error EMOTE shows the user is an EmoteError with a kind and a message,
so the UI catches one type; control-flow exceptions are the only others in the tree."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from emote.model_runtime.errors import EmoteError, EmoteInputError, RuntimeFailure

ROOT = Path(__file__).resolve().parents[1]
# Raised and caught inside one module to steer control flow; never shown to the user as such.
CONTROL_FLOW = {"Cancelled", "BatchInterrupted"}


def _user_errors():
    from emote.emote_blender.export import ExportFailed
    from emote.emote_blender.runtime_setup import SetupBusy
    from emote.model_runtime.cli import _ArgError

    return [
        (EmoteInputError("too_short", "Audio too short."), "too_short", "Audio too short."),
        (RuntimeFailure("runtime_hung", "No progress."), "runtime_hung", "No progress."),
        (ExportFailed("The glTF exporter failed."), "export_failed", "The glTF exporter failed."),
        (SetupBusy("another Blender is setting up"), "setup_busy",
         "another Blender is setting up"),
        (_ArgError("give an AUDIO file"), "bad_request", "give an AUDIO file"),
    ]


@pytest.mark.parametrize("index", range(5))
def test_every_user_error_is_an_emote_error_with_its_kind_and_message(index):
    exc, kind, message = _user_errors()[index]
    assert isinstance(exc, EmoteError)
    assert (exc.kind, exc.message, str(exc)) == (kind, message, message)
    with pytest.raises(EmoteError):
        raise exc


def test_export_failed_is_still_a_runtime_error():
    from emote.emote_blender.export import ExportFailed

    assert issubclass(ExportFailed, RuntimeError)  # callers that caught RuntimeError still do


def _exception_classes():
    """(file, class name, base names) of every class in the product deriving from an exception."""
    for folder in ("model_runtime", "emote_blender", "addon_ui"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text("utf-8"))):
                if isinstance(node, ast.ClassDef):
                    bases = [ast.unparse(b) for b in node.bases]
                    if any(b.endswith(("Exception", "Error", "Failure")) for b in bases):
                        yield path.relative_to(ROOT), node.name, bases


def test_no_error_class_outside_the_one_base():
    builtin = {"Exception", "RuntimeError", "ValueError", "OSError"}
    stray = [(str(f), name, bases) for f, name, bases in _exception_classes()
             if name not in CONTROL_FLOW and name != "EmoteError"
             and all(b in builtin for b in bases)]
    assert stray == [], "derive these from model_runtime.errors.EmoteError"
