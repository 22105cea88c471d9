"""Which runtime the installed extension uses, and 'Set up runtime' run offline from Blender."""

from __future__ import annotations

import os
import shutil
import sys
import pytest

from tests.blender.conftest import MODULE, bpy
from tests.helpers.offline import offline_pip

pytestmark = pytest.mark.blender


def _prefs_module():
    return sys.modules[MODULE + ".addon_ui.preferences"]


@pytest.fixture
def no_runtime(fresh, monkeypatch):
    """The extension as a new user has it: no EMOTE_RUNTIME_PYTHON, no preference set."""
    from bl_ext.user_default.emote.emote_blender import runtime_setup

    monkeypatch.delenv("EMOTE_RUNTIME_PYTHON", raising=False)
    monkeypatch.setattr(runtime_setup, "_CURRENT", None)  # no set-up run from an earlier test
    p = _prefs_module().prefs(bpy.context)
    old, p.runtime_python = p.runtime_python, ""
    yield fresh
    p.runtime_python = old


def test_without_any_runtime_generate_is_refused_in_words(no_runtime):
    prefs = _prefs_module()
    assert prefs.runtime_python(bpy.context) == ""
    state, words = prefs.runtime_status(bpy.context)
    assert state == "missing" and "not set up" in words
    from bl_ext.user_default.emote.emote_blender.runtime_env import check_interpreter
    from bl_ext.user_default.emote.model_runtime.errors import RuntimeFailure

    with pytest.raises(RuntimeFailure, match="Set up runtime"):
        check_interpreter(prefs.runtime_python(bpy.context))


def test_bundled_wheels_make_blenders_python_the_runtime(no_runtime):
    from bl_ext.user_default.emote.emote_blender import runtime_setup
    from bl_ext.user_default.emote.emote_blender.runtime_env import runtime_env

    prefs = _prefs_module()
    # the extension folder the loaded emote_blender belongs to (the installed copy, or the
    # checkout when the default suite imported that first)
    wheel = runtime_setup.extension_root() / "wheels" / "torch-2.13.0+cpu-cp311-cp311-manylinux_2_28_x86_64.whl"
    site = runtime_setup.wheel_site_packages(prefs.extensions_dir())
    made_site = not site.exists()
    wheel.parent.mkdir(exist_ok=True)
    wheel.write_bytes(b"")
    try:
        assert prefs.runtime_python(bpy.context) == ""  # the wheel is there, not installed
        (site / "torch").mkdir(parents=True, exist_ok=True)
        assert prefs.runtime_python(bpy.context) == sys.executable
        assert prefs.runtime_status(bpy.context) == ("ready",
                                                      "Runtime: bundled with the extension")
        env = runtime_env(sys.executable)
        assert str(site) in env["PYTHONPATH"].split(os.pathsep)
        # An explicit preference still wins, and gets none of our folders.
        p = prefs.prefs(bpy.context)
        p.runtime_python = "/opt/my/python"
        assert prefs.runtime_python(bpy.context) == "/opt/my/python"
        assert str(site) not in runtime_env("/opt/my/python")["PYTHONPATH"]
    finally:
        shutil.rmtree(wheel.parent)
        shutil.rmtree(site / "torch", ignore_errors=True)
        if made_site:
            shutil.rmtree(site.parents[2], ignore_errors=True)  # the .local we made
        runtime_setup.bind_site_dirs(sys.executable, [])


def test_setup_runtime_offline_shows_the_reason_and_nothing_looks_ready(no_runtime,
                                                                         monkeypatch):
    from bl_ext.user_default.emote.emote_blender import runtime_setup

    prefs = _prefs_module()
    offline_pip(monkeypatch)
    system = bpy.context.preferences.system
    old_online, system.use_online_access = system.use_online_access, True
    try:
        with pytest.raises(RuntimeError) as err:  # bpy.ops raises on an ERROR report
            bpy.ops.emote.setup_runtime()
    finally:
        system.use_online_access = old_online
    msg = str(err.value)
    assert "no matching distribution for torch==2.13.0: no network?" in msg, msg
    assert "exit code" not in msg
    folder = prefs.setup_folder()
    assert not folder.exists() and not runtime_setup.partial_folder(folder).exists()
    assert prefs.runtime_python(bpy.context) == ""
    state, words = prefs.runtime_status(bpy.context)
    assert state == "failed" and "no network?" in words  # what the runtime box shows


def test_second_click_while_setting_up_does_nothing(no_runtime, monkeypatch):
    from bl_ext.user_default.emote.emote_blender import runtime_setup

    offline_pip(monkeypatch)
    run = runtime_setup.start_setup(_prefs_module().setup_folder(), sys.executable)
    try:
        assert run.running
        assert not bpy.ops.emote.setup_runtime.poll()
        assert _prefs_module().runtime_status(bpy.context)[0] == "running"
    finally:
        run.wait(timeout_s=300)
    assert bpy.ops.emote.setup_runtime.poll()


class _Recorder:
    """Stands in for a UILayout: records labels and operator buttons (drawing needs a window)."""

    def __init__(self, log):
        self.log, self.alert = log, False

    def box(self):
        return _Recorder(self.log)

    column = row = lambda self, align=False: _Recorder(self.log)

    def label(self, text="", icon="NONE"):
        self.log.append(("label", text, icon))

    def operator(self, idname, text="", icon="NONE"):
        self.log.append(("op", idname, text))
        return type("Props", (), {})()


def test_runtime_box_offers_the_right_buttons(no_runtime, monkeypatch):
    from bl_ext.user_default.emote.emote_blender import runtime_setup

    prefs = _prefs_module()
    log: list = []
    prefs.draw_runtime_box(_Recorder(log), bpy.context)
    assert ("op", "emote.setup_runtime", "Set up runtime") in log
    log.clear()
    p = prefs.prefs(bpy.context)
    p.runtime_python = "/nowhere/python"  # a wrong explicit choice: say so, offer no set-up
    prefs.draw_runtime_box(_Recorder(log), bpy.context)
    assert not [e for e in log if e[0] == "op"]
    assert "/nowhere/python does not exist" in " ".join(e[1] for e in log)
    p.runtime_python = ""
    log.clear()
    folder = prefs.setup_folder()
    folder.mkdir(parents=True)
    (folder / runtime_setup.READY_MARKER).write_text(__import__("json").dumps(
        {"requirements": runtime_setup.pinned_requirements(),
         "python": list(sys.version_info[:2])}))
    try:
        prefs.draw_runtime_box(_Recorder(log), bpy.context)
        assert log == []  # ready: the panel stays quiet
        prefs.draw_runtime_box(_Recorder(log), bpy.context, always=True)
        ops = [e[2] for e in log if e[0] == "op"]
        assert ops == ["Repair", "Remove"], log
        assert prefs.runtime_python(bpy.context) == sys.executable
        assert runtime_setup.site_dirs_for(sys.executable) == [str(folder)]
    finally:
        runtime_setup.remove_setup(folder)
        runtime_setup.bind_site_dirs(sys.executable, [])
