"""'Set up runtime' cannot half-succeed: ready marker, temp folder, real reason, one run at a time.

The offline run is real: pip is pointed at an index nobody answers (and this machine's local
wheel folders are switched off), as on a user's machine with no network.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from emote.emote_blender import runtime_setup
from emote.emote_blender.runtime_env import extension_root, runtime_env
from tests.helpers.offline import offline_pip

PIP_NO_NETWORK_LOG = """\
$ python -m pip install --target /x/runtime_packages.partial torch==2.13.0 numpy==1.26.4
WARNING: Retrying (Retry(total=0, connect=None, read=None, redirect=None, status=None)) after \
connection broken by 'NewConnectionError('<pip._vendor.urllib3.connection.HTTPSConnection object \
at 0x7f>: Failed to establish a new connection: [Errno 101] Network is unreachable')': /simple/torch/
ERROR: Could not find a version that satisfies the requirement torch==2.13.0 (from versions: none)
ERROR: No matching distribution found for torch==2.13.0
SETUP FAILED: step exited with code 1
"""


def test_reason_names_the_package_and_the_network():
    assert runtime_setup.failure_reason(PIP_NO_NETWORK_LOG) == \
        "no matching distribution for torch==2.13.0: no network?"
    assert "no wheel for this platform" in runtime_setup.failure_reason(
        "ERROR: No matching distribution found for scipy==1.17.1\n")
    assert "has no pip" in runtime_setup.failure_reason(
        "/usr/bin/python3: No module named pip\nSETUP FAILED: step exited with code 1\n")
    assert runtime_setup.failure_reason("IMPORT CHECK FAILED: scipy (ImportError: libx)\n") == \
        "the installed packages do not import: scipy (ImportError: libx)"
    assert runtime_setup.failure_reason("") == "the set-up stopped without a message"


def test_only_a_marker_with_todays_pins_counts_as_set_up(tmp_path):
    folder = runtime_setup.setup_folder(tmp_path)
    (folder / "torch").mkdir(parents=True)  # packages there, but no marker: not set up
    (folder / "bin").mkdir()
    (folder / "bin" / "python").write_text("")
    assert runtime_setup.setup_state(folder) == "missing"
    marker = folder / runtime_setup.READY_MARKER
    marker.write_text(json.dumps({"requirements": ["torch==1.0"],
                                  "python": list(sys.version_info[:2])}))
    assert runtime_setup.setup_state(folder) == "outdated"
    marker.write_text(json.dumps({"requirements": runtime_setup.pinned_requirements(),
                                  "python": list(sys.version_info[:2])}))
    assert runtime_setup.setup_state(folder) == "ready"
    runtime_setup.remove_setup(folder)
    assert not folder.exists() and runtime_setup.setup_state(folder) == "missing"


def test_a_setup_without_the_optional_plot_package_stays_ready(tmp_path):
    """matplotlib (the main job's plot) is optional: adding its pin must not make every earlier
    'Set up runtime' outdated (a Repair downloads PyTorch again)."""
    assert runtime_setup.optional_packages() == {"matplotlib"}
    folder = runtime_setup.setup_folder(tmp_path)
    folder.mkdir(parents=True)
    marker = folder / runtime_setup.READY_MARKER
    python = list(sys.version_info[:2])
    pins = runtime_setup.pinned_requirements()
    before = [r for r in pins if not r.startswith("matplotlib")]
    assert before != pins
    for reqs in (pins, before, before + ["matplotlib==3.9.0"]):
        marker.write_text(json.dumps({"requirements": reqs, "python": python}))
        assert runtime_setup.setup_state(folder) == "ready", reqs
    for reqs in ([r.replace("torch==2.13.0", "torch==2.12.0") for r in pins], before[1:]):
        marker.write_text(json.dumps({"requirements": reqs, "python": python}))
        assert runtime_setup.setup_state(folder) == "outdated", reqs


def test_install_is_pinned_from_the_index_alone():
    cmd = runtime_setup.install_command("py", Path("/t"), runtime_setup.pinned_requirements())
    assert "torch==2.13.0" in cmd and "numpy==1.26.4" in cmd
    assert not any("index-url" in c or "find-links" in c for c in cmd)
    assert all("==" in r for r in runtime_setup.pinned_requirements())


def test_offline_setup_ends_in_a_clear_message_and_leaves_nothing_ready(tmp_path, monkeypatch):
    offline_pip(monkeypatch)
    folder = runtime_setup.setup_folder(tmp_path / "user")
    run = runtime_setup.start_setup(folder, sys.executable)
    assert runtime_setup.start_setup(folder, sys.executable) is run  # a second click: same run
    assert run.wait(timeout_s=300) != 0
    assert not run.ok
    reason = run.reason()
    assert reason == "no matching distribution for torch==2.13.0: no network?", reason
    assert "exit code" not in reason
    assert not folder.exists()
    assert not runtime_setup.partial_folder(folder).exists()
    assert runtime_setup.setup_state(folder) == "missing"
    assert runtime_setup.log_path(folder).is_file()  # the details stay readable
    assert not runtime_setup.lock_path(folder).exists()
    assert run.progress_text().startswith("downloading and installing PyTorch")


def test_bound_site_dirs_reach_only_that_interpreter(tmp_path):
    site = tmp_path / "site-packages"
    runtime_setup.bind_site_dirs("/opt/blender/python/bin/python3.11", [site])
    try:
        env = runtime_env("/opt/blender/python/bin/python3.11")
        parts = env["PYTHONPATH"].split(__import__("os").pathsep)
        assert parts[:2] == [str(extension_root()), str(site)]
        assert env["PYTHONNOUSERSITE"] == "1"
        other = runtime_env("/home/me/conda/bin/python")
        assert str(site) not in other["PYTHONPATH"]
    finally:
        runtime_setup.bind_site_dirs("/opt/blender/python/bin/python3.11", [])


def test_bundled_runtime_needs_the_wheel_and_its_install(tmp_path):
    root, ext = tmp_path / "emote", tmp_path / "extensions"
    (root / "wheels").mkdir(parents=True)
    assert not runtime_setup.has_bundled_runtime(ext, root)
    (root / "wheels" / "torch-2.13.0-cp311-cp311-win_amd64.whl").write_bytes(b"")
    assert not runtime_setup.has_bundled_runtime(ext, root)  # Blender has not installed it
    (runtime_setup.wheel_site_packages(ext) / "torch").mkdir(parents=True)
    assert runtime_setup.has_bundled_runtime(ext, root)


def test_enable_without_numpy_says_what_to_install(monkeypatch):
    import importlib.util

    root = Path(extension_root())
    spec = importlib.util.spec_from_file_location("emote_ext_entry", root / "__init__.py")
    entry = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(entry)
    monkeypatch.setitem(sys.modules, "numpy", None)  # `import numpy` fails as on Debian's Blender
    with pytest.raises(ImportError) as err:
        entry.register()
    assert "numpy" in str(err.value) and "python3-numpy" in str(err.value)
    assert err.value.__cause__ is None and err.value.__suppress_context__


def test_a_live_set_up_elsewhere_blocks_a_second_one(tmp_path):
    import subprocess

    folder = runtime_setup.setup_folder(tmp_path)
    folder.parent.mkdir(parents=True, exist_ok=True)
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        runtime_setup.lock_path(folder).write_text(json.dumps({"pid": other.pid,
                                                               "started": 0}))
        if __import__("os").name != "nt":
            assert runtime_setup.lock_owner(folder) == other.pid
            with pytest.raises(runtime_setup.SetupBusy, match="already setting up"):
                runtime_setup.start_setup(folder, sys.executable)
            with pytest.raises(runtime_setup.SetupBusy):
                runtime_setup.remove_setup(folder)
    finally:
        other.kill()
        other.wait()
    assert runtime_setup.lock_owner(folder) is None  # its process is gone: a stale lock
