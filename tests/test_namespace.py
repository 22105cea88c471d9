"""The extension is one package: its parts import each other relatively, never by a generic
top-level name, and never touch sys.path (issue 18 part 5).

Blender imports the extension folder as `bl_ext.<repo>.emote`; a top-level `emote_blender` or
`model_runtime` would stay loaded after the add-on is disabled and could collide with another
add-on's. The Blender side of this is tests/blender/test_namespace.py.
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PARTS = ("addon_ui", "emote_blender", "model_runtime")
DEVPATH = ROOT / "scripts" / "devpath"


def _package_files() -> list[Path]:
    files = [ROOT / "__init__.py"]
    for part in PARTS:
        files += sorted(p for p in (ROOT / part).rglob("*.py") if "__pycache__" not in p.parts)
    return files


def _imports(path: Path):
    """(node, absolute name it imports or None, the package it resolves in) for each import."""
    rel = path.relative_to(ROOT).with_suffix("").parts
    package = list(rel[:-1])  # emote_blender/bake -> [emote_blender]; x/__init__ -> [x]
    for node in ast.walk(ast.parse(path.read_text("utf-8"))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node, alias.name, None
        elif isinstance(node, ast.ImportFrom):
            if node.level == 0:
                yield node, node.module, None
            else:
                up = package[:len(package) - node.level + 1]
                if len(package) - node.level + 1 < 0:
                    up = None  # beyond the extension's own folder
                yield node, None, up


def test_the_parts_import_each_other_relatively():
    """(The one exception, marked `# top-level on purpose`, is the set-up driver's own process:
    see test_the_set_up_driver_runs_as_its_own_process.)"""
    absolute = []
    for p in _package_files():
        lines = p.read_text("utf-8").splitlines()
        absolute += [f"{p.relative_to(ROOT)}:{node.lineno} {name}"
                     for node, name, _up in _imports(p)
                     if name and name.split(".")[0] in PARTS
                     and "# top-level on purpose" not in lines[node.lineno - 1]]
    assert absolute == []


def test_the_runtime_stays_inside_its_folder():
    """The runtime process has model_runtime top-level (python -m model_runtime with the
    extension folder on PYTHONPATH): a relative import out of it would fail there."""
    leaving = []
    for path in _package_files():
        rel = path.relative_to(ROOT).as_posix()
        if rel.startswith("model_runtime/"):
            leaving += [f"{rel}:{node.lineno}" for node, _name, up in _imports(path)
                        if isinstance(node, ast.ImportFrom) and node.level
                        and (not up or up[0] != "model_runtime")]
    assert leaving == []


def test_the_set_up_driver_runs_as_its_own_process(tmp_path):
    """'Set up runtime' starts `python -m emote_blender.runtime_setup` with the extension folder
    on PYTHONPATH (emote_blender top-level there), while in Blender the same module's errors
    are the ones the UI catches."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["PYTHONPATH"] = str(ROOT)
    proc = subprocess.run([sys.executable, "-m", "emote_blender.runtime_setup", "--help"],
                          capture_output=True, text=True, cwd=str(tmp_path), env=env,
                          timeout=60)
    assert proc.returncode == 0 and "--folder" in proc.stdout, proc.stderr[-2000:]
    from emote.emote_blender import runtime_setup
    from emote.model_runtime.errors import EmoteError

    assert issubclass(runtime_setup.SetupBusy, EmoteError)


def test_the_extension_leaves_sys_path_alone():
    touching = []
    for path in _package_files():
        for node in ast.walk(ast.parse(path.read_text("utf-8"))):
            if isinstance(node, ast.Attribute) and node.attr == "path" and \
                    isinstance(node.value, ast.Name) and node.value.id == "sys":
                touching.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert touching == []


def test_the_checkout_imports_as_one_package_with_no_top_level_parts():
    """Every module of the three parts (training aside) imports as emote.<part>...; afterwards no
    generic top-level name is loaded and an error class is one class whichever part names it."""
    names = []
    for part in PARTS:
        for p in sorted((ROOT / part).rglob("*.py")):
            rel = p.relative_to(ROOT).with_suffix("").parts
            if "training" in rel or "__pycache__" in rel or rel[-1] == "__main__":
                continue
            names.append(".".join(("emote",) + (rel[:-1] if rel[-1] == "__init__" else rel)))
    code = ("import importlib, sys\n"
            "for name in sys.argv[1:]:\n"
            "    importlib.import_module(name)\n"
            "top = sorted(m for m in sys.modules if m.split('.')[0] in "
            f"{PARTS!r})\n"
            "assert top == [], top\n"
            "from emote.emote_blender import main_job\n"
            "from emote.model_runtime.errors import EmoteInputError\n"
            "try:\n"
            "    main_job.parse_keys(['happy:soon'], 'emotion', str)\n"
            "except EmoteInputError as exc:\n"
            "    print('caught', exc.kind)\n")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["PYTHONPATH"] = str(DEVPATH)
    proc = subprocess.run([sys.executable, "-c", code, *names], capture_output=True, text=True,
                          cwd=str(DEVPATH), env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.strip().splitlines()[-1] == "caught bad_request"
