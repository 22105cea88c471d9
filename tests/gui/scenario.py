# SPDX-License-Identifier: GPL-3.0-or-later
"""The animator's path through the EMOTE panel, in a real Blender window (run by tests/gui/run.py).

Runs inside Blender (`blender --python scenario.py`), driven from `bpy.app.timers` so the window's
event loop (modal operators, redraws, real key presses from xdotool) runs between steps. Every
claim is a named check in `findings_<mode>.json`; screenshots of the whole screen go beside it.
Settings come from the environment: EMOTE_GUI_MODE (main | reopen), EMOTE_GUI_OUT, EMOTE_ZIP,
EMOTE_PY (a runtime Python with torch), EMOTE_WAV (the sample line), EMOTE_WAV_LONG (minutes).
"""

import json
import os
import subprocess
import sys
import time
import traceback
from pathlib import Path

import bpy

MODE = os.environ.get("EMOTE_GUI_MODE", "main")
OUT = Path(os.environ["EMOTE_GUI_OUT"])
ADDON = "bl_ext.user_default.emote"
T0 = time.monotonic()
FINDINGS = {"mode": MODE, "blender": bpy.app.version_string, "python": sys.version,
            "checks": [], "steps": [], "shots": [], "timings": {}}
_shots = [0]


def save() -> None:
    (OUT / f"findings_{MODE}.json").write_text(json.dumps(FINDINGS, indent=1, default=str))


def log(step: str, **kw) -> None:
    entry = {"step": step, "t": round(time.monotonic() - T0, 2), **kw}
    FINDINGS["steps"].append(entry)
    print("EMOTE_GUI", json.dumps(entry, default=str), flush=True)
    save()


def check(name: str, ok: bool, **detail) -> bool:
    """Record one named claim; the pytest side turns each into a test."""
    FINDINGS["checks"].append({"name": name, "ok": bool(ok), **detail})
    log("check", name=name, ok=bool(ok), **detail)
    return bool(ok)


def shot(name: str) -> None:
    _shots[0] += 1
    path = OUT / f"{MODE}_{_shots[0]:02d}_{name}.png"
    subprocess.run(["import", "-window", "root", str(path)], capture_output=True, timeout=60)
    FINDINGS["shots"].append(path.name)
    save()


def xdo(*args: str) -> None:
    """Real X input, asynchronous so that Blender's event loop receives it."""
    subprocess.Popen(["xdotool", *args])


def area(kind: str):
    return next((a for a in bpy.context.window_manager.windows[0].screen.areas
                 if a.type == kind), None)


def region(a, kind: str):
    return next((r for r in a.regions if r.type == kind), None)


def override(kind: str = "VIEW_3D", reg: str = "UI") -> dict:
    w = bpy.context.window_manager.windows[0]
    a = area(kind)
    return dict(window=w, screen=w.screen, area=a, region=region(a, reg) if a else None)


def settings():
    return bpy.context.scene.emote


def module(name: str):
    """One of the extension's own modules (loaded by the add-on, not by this script)."""
    for key in (f"{ADDON}.{name}", name):
        if key in sys.modules:
            return sys.modules[key]
    raise KeyError(name)


def ops():
    return module("addon_ui.operators")


def mouse_over_sidebar() -> None:
    """Put the pointer where an animator's is when they press a panel button: over the 3D
    View's sidebar (Blender animates a panel's new size only for the region under the mouse)."""
    ui = region(area("VIEW_3D"), "UI")
    height = bpy.context.window_manager.windows[0].height
    xdo("mousemove", str(ui.x + ui.width // 2), str(height - (ui.y + ui.height // 4)))


def red_pixels_in_sidebar(png: Path) -> int:
    """How many pixels of the 3D View's sidebar are the red of Blender's alert text."""
    import numpy as np

    img = bpy.data.images.load(str(png))
    try:
        w, h = img.size
        px = np.empty(w * h * 4, dtype=np.float32)
        img.pixels.foreach_get(px)
        px = px.reshape(h, w, 4)  # rows from the bottom, as Blender's regions count
        ui = region(area("VIEW_3D"), "UI")
        box = px[ui.y:ui.y + ui.height, ui.x:ui.x + ui.width, :3]
        return int(((box[..., 0] > 0.7) & (box[..., 1] < 0.55) & (box[..., 2] < 0.55)).sum())
    finally:
        bpy.data.images.remove(img)


def takes_of(head) -> list:
    return [(t.number, t.name) for t in head.emote_takes] if head else []


def shape_action(head):
    ad = head.data.shape_keys.animation_data if head and head.data.shape_keys else None
    return ad.action.name if ad and ad.action else None


def generate(tag: str, esc_after_stage: str | None = None, shots_every: float | None = 1.0,
             max_s: float = 300.0):
    """Press Generate as the panel does (INVOKE_DEFAULT in the 3D View) and follow it.

    A generator of wait times for the timer runner; leaves its record in FINDINGS["runs"][tag].
    """
    s = settings()
    head = s.head
    n_takes = len(head.emote_takes)
    rec = {"takes_before": n_takes}
    with bpy.context.temp_override(**override()):
        t_click = time.monotonic()
        rec["invoke"] = str(bpy.ops.emote.generate("INVOKE_DEFAULT"))
    labels, fractions, last_shot, sent = [], [], t_click, False
    while True:
        yield 0.01
        now = time.monotonic()
        state = ops().progress_state()
        if len(head.emote_takes) > n_takes and "keys_at" not in rec:
            rec["keys_at"] = round(now - t_click, 3)
        if state is None:
            break
        fraction, label = state
        if ops()._ACTIVE.get("drawn"):
            rec["progress_drawn_at"] = rec.get("progress_drawn_at", round(now - t_click, 3))
        if not labels or labels[-1] != label:
            labels.append(label)
        fractions.append(round(fraction, 3))
        if now - t_click > max_s:
            rec["timed_out"] = True
            break
        if esc_after_stage and not sent and esc_after_stage.lower() in label.lower():
            xdo("mousemove", "700", "500", "key", "Escape")  # the mouse over the viewport
            sent = True
            rec["esc_at"] = round(now - t_click, 3)
        if shots_every is not None and now - last_shot >= shots_every:
            shot(f"{tag}_progress")
            last_shot = time.monotonic()
    rec["breakdown"] = {k: round(v, 3) for k, v in ops().LAST_TIMINGS.items()}
    ops().LAST_TIMINGS.clear()
    rec.update(seconds=round(time.monotonic() - t_click, 3), labels=labels,
               progress_monotonic=all(b >= a - 1e-6 for a, b in zip(fractions, fractions[1:])),
               takes_after=len(head.emote_takes), last_error=s.last_error)
    FINDINGS.setdefault("runs", {})[tag] = rec
    log("generate", tag=tag, **rec)
    yield 0.5
    shot(f"{tag}_after")


def scenario_main():
    """The animator's path, one step after another (each step yields its own wait times)."""
    yield from _close_the_splash()
    if not (yield from _install_the_zip()):
        return
    yield from _sidebar_for_a_new_user()
    yield from _add_default_head()
    line_strip = yield from _dialogue_and_emotion_keys()
    yield from _generate_cold()
    yield from _generate_warm()
    _switch_takes()
    yield from _undo_and_redo()
    yield from _esc_during_a_long_generate(line_strip)
    yield from _export_both_formats()
    _save_the_file()
    yield from _missing_audio()
    yield from second_character()


def _close_the_splash():
    yield 2.0
    xdo("mousemove", "960", "700", "key", "Escape")  # close the splash screen like a user
    yield 1.0
    shot("startup")


def _install_the_zip():
    # -- install the zip as Get Extensions > Install from Disk does ---------------------------
    with bpy.context.temp_override(**override()):
        try:
            ret = bpy.ops.extensions.package_install_files(
                filepath=os.environ["EMOTE_ZIP"], repo="user_default", enable_on_install=True)
        except Exception:
            ret = traceback.format_exc()
    yield 1.0
    if not check("extension installs and enables", ADDON in bpy.context.preferences.addons
                 and hasattr(bpy.types.Scene, "emote"), ret=str(ret)):
        return
    return True


def _sidebar_for_a_new_user():
    prefs = bpy.context.preferences.addons[ADDON].preferences
    # -- the sidebar as a new user first sees it ---------------------------------------------
    v3d = area("VIEW_3D")
    v3d.spaces.active.show_region_ui = True
    yield 0.3
    region(v3d, "UI").active_panel_category = "EMOTE"
    if bpy.data.objects.get("Cube"):
        bpy.data.objects.remove(bpy.data.objects["Cube"])
    yield 1.5
    shot("panel_new_user")
    check("Generate greyed out with a reason before there is a head",
          not bpy.ops.emote.generate.poll() and "head" in ops().generate_blocker(bpy.context),
          reason=ops().generate_blocker(bpy.context))
    prefs.runtime_python = os.environ["EMOTE_PY"]


def _add_default_head():
    # -- Add default head: it is framed in the viewport --------------------------------------
    v3d = area("VIEW_3D")
    with bpy.context.temp_override(**override()):
        ret = bpy.ops.emote.add_default_head("INVOKE_DEFAULT")
    yield 1.0
    head = settings().head
    check("Add default head adds the head", head is not None and ret == {"FINISHED"},
          ret=str(ret))
    from bpy_extras.view3d_utils import location_3d_to_region_2d
    win = region(v3d, "WINDOW")
    rv3d = v3d.spaces.active.region_3d
    corners = [head.matrix_world @ __import__("mathutils").Vector(c) for c in head.bound_box]
    pts = [location_3d_to_region_2d(win, rv3d, c) for c in corners]
    inside = [p is not None and 0 <= p.x <= win.width and 0 <= p.y <= win.height for p in pts]
    span = (max(p.y for p in pts if p) - min(p.y for p in pts if p)) / win.height if all(
        p is not None for p in pts) else 0.0
    check("Add default head frames the head in the viewport", all(inside) and span > 0.3,
          height_fraction=round(span, 2))
    shot("default_head_added")


def _dialogue_and_emotion_keys():
    # -- the dialogue in the Video Sequencer -------------------------------------------------
    area("DOPESHEET_EDITOR").type = "SEQUENCE_EDITOR"
    yield 0.3
    with bpy.context.temp_override(**override("SEQUENCE_EDITOR", "WINDOW")):
        bpy.ops.sequencer.sound_strip_add(filepath=os.environ["EMOTE_WAV"], frame_start=1,
                                          channel=1)
        bpy.ops.sequencer.view_all()
    scene = bpy.context.scene
    strip = module("emote_blender.audio_strips").sound_strips(scene)[0]
    scene.frame_end = int(strip.frame_final_end)
    line_strip = strip.name
    # -- keyframe the head's Emotion and Intensity (what hover + I does) ---------------------
    head = settings().head
    s = head.emote
    for frame, emo, inten in ((1, "NEUTRAL", 0.4), (70, "HAPPY", 0.9), (140, "SURPRISED", 1.0)):
        s.emotion, s.intensity = emo, inten
        head.keyframe_insert("emote.emotion", frame=frame)
        head.keyframe_insert("emote.intensity", frame=frame)
    scene.frame_set(1)
    styles = module("emote_blender.generate").checkpoint_styles("default")
    check("the default speaking style is one the bundled model offers",
          s.style == styles[0], style=s.style, offered=styles)
    check("Generate is enabled once head, strip and runtime are there",
          bpy.ops.emote.generate.poll(), reason=ops().generate_blocker(bpy.context))
    yield 1.0
    shot("ready_to_generate")
    return line_strip


def _generate_cold():
    # -- Generate, cold then warm -----------------------------------------------------------
    head, scene = settings().head, bpy.context.scene
    yield from generate("cold", shots_every=0.5)
    cold = FINDINGS["runs"]["cold"]
    check("cold Generate bakes a take with the panel's defaults",
          cold["takes_after"] == cold["takes_before"] + 1 and not cold["last_error"], **cold)
    check("a cold start says it is loading",
          any("loading" in lb.lower() or "starting" in lb.lower() for lb in cold["labels"]),
          labels=cold["labels"])
    check("progress is one bar that only moves forward", cold["progress_monotonic"])
    check("the panel shows the progress bar within two seconds of a cold click",
          cold.get("progress_drawn_at", 99) < 2.0, drawn_at=cold.get("progress_drawn_at"))
    check("a cold start says it is loading before any other word", cold["labels"][:1] == [
          "Starting the runtime (loading PyTorch)"], labels=cold["labels"])
    scene.frame_set(40)
    yield 0.5
    key = head.data.shape_keys
    moving = [round(key.key_blocks["jawOpen"].value, 3)]
    for fr in (20, 60, 100):
        scene.frame_set(fr)
        moving.append(round(key.key_blocks["jawOpen"].value, 3))
    check("the baked take moves the jaw", len(set(moving)) > 1, jawOpen=moving)
    scene.frame_set(45)
    yield 0.5
    shot("take1_frame45")


def _generate_warm():
    for i in range(3):
        yield from generate(f"warm{i + 1}", shots_every=None)
    warm = [FINDINGS["runs"][f"warm{i + 1}"]["keys_at"] for i in range(3)]
    FINDINGS["timings"]["warm_click_to_keys_s"] = warm
    FINDINGS["timings"]["warm_breakdown"] = [FINDINGS["runs"][f"warm{i + 1}"]["breakdown"]
                                             for i in range(3)]
    check("warm Generates bake", all(FINDINGS["runs"][f"warm{i + 1}"]["takes_after"] == 2 + i
                                     for i in range(3)), warm_s=warm)
    shot("four_takes")


def _switch_takes():
    # -- switch takes in the list ------------------------------------------------------------
    head = settings().head
    head.emote_active_take = 0
    first = shape_action(head)
    head.emote_active_take = len(head.emote_takes) - 1
    last = shape_action(head)
    check("switching takes in the list switches what plays",
          first == head.emote_takes[0].action.name and last == head.emote_takes[-1].action.name
          and first != last, first=first, last=last)


def _undo_and_redo():
    # -- Ctrl+Z / Ctrl+Shift+Z undo and redo the last Generate ------------------------------
    head = settings().head
    n = len(head.emote_takes)
    xdo("mousemove", "700", "500", "key", "ctrl+z")
    yield 2.0
    n_undo = len(settings().head.emote_takes)
    xdo("mousemove", "700", "500", "key", "ctrl+shift+z")
    yield 2.0
    head = settings().head
    check("Ctrl+Z undoes one Generate and Ctrl+Shift+Z redoes it",
          n_undo == n - 1 and len(head.emote_takes) == n, before=n, undone=n_undo,
          redone=len(head.emote_takes))


def _esc_during_a_long_generate(line_strip: str):
    # -- Esc during a long Generate keeps the scene and the warm runtime --------------------
    scene = bpy.context.scene
    with bpy.context.temp_override(**override("SEQUENCE_EDITOR", "WINDOW")):
        bpy.ops.sequencer.sound_strip_add(filepath=os.environ["EMOTE_WAV_LONG"], frame_start=1,
                                          channel=2)
    long_strip = [x for x in module("emote_blender.audio_strips").sound_strips(scene)
                  if "long" in x.name][0]
    settings().head.emote.strip_name = long_strip.name
    client = module("emote_blender.runtime_client")
    server_before = client._SERVER.proc.pid if client._SERVER and client._SERVER.alive else None
    actions_before = sorted(a.name for a in bpy.data.actions)
    yield from generate("esc_long", esc_after_stage="speech", shots_every=2.0)
    rec = FINDINGS["runs"]["esc_long"]
    words = [lb for r in FINDINGS["runs"].values() for lb in r["labels"]]
    check("progress speaks the animator's words", any(
        lb.startswith("Analysing speech ") and lb.endswith("%") for lb in words)
        and not any("_" in lb or lb != lb.strip() for lb in words), labels=sorted(set(words)))
    check("Esc cancels a long Generate and leaves the scene as it was",
          "esc_at" in rec and rec["takes_after"] == rec["takes_before"]
          and sorted(a.name for a in bpy.data.actions) == actions_before, **rec)
    server_after = client._SERVER.proc.pid if client._SERVER and client._SERVER.alive else None
    check("Cancel keeps the warm runtime alive", server_before is not None
          and server_after == server_before, before=server_before, after=server_after)
    settings().head.emote.strip_name = line_strip
    yield from generate("after_cancel", shots_every=None)
    rec = FINDINGS["runs"]["after_cancel"]
    check("a Generate after the cancel is warm and bakes",
          rec["takes_after"] == rec["takes_before"] + 1
          and not any("loading pytorch" in lb.lower() for lb in rec["labels"]), **rec)


def _export_both_formats():
    # -- both exports through their file browsers -------------------------------------------
    for op, name in (("export_gltf", "take.glb"), ("export_fbx", "take.fbx")):
        with bpy.context.temp_override(**override()):
            getattr(bpy.ops.emote, op)("INVOKE_DEFAULT")
        yield 1.5
        browser = None
        for w in bpy.context.window_manager.windows:
            for a in w.screen.areas:
                if a.type == "FILE_BROWSER":
                    browser = (w, a)
        shot(f"{op}_browser")
        if not check(f"{op}: a file browser opens", browser is not None):
            continue
        w, a = browser
        params = a.spaces.active.params
        params.directory = str(OUT).encode()
        params.filename = name
        yield 0.3
        with bpy.context.temp_override(window=w, area=a, region=region(a, "WINDOW")):
            bpy.ops.file.execute()
        yield 3.0
        path = OUT / name
        check(f"{op} writes the file", path.is_file() and path.stat().st_size > 10000,
              size=path.stat().st_size if path.is_file() else None)


def _save_the_file():
    # -- save the file (and the preferences, so the reopen starts with the extension on) ----
    scene = bpy.context.scene
    scene.frame_set(45)
    FINDINGS["saved"] = {"takes": takes_of(settings().head),
                         "action": shape_action(settings().head)}
    bpy.ops.wm.save_as_mainfile(filepath=str(OUT / "gui_session.blend"))
    bpy.ops.wm.save_userpref()
    check("the file saves", (OUT / "gui_session.blend").is_file())
    shot("saved")


def _missing_audio():
    # -- an audio file gone missing: the error in words, wrapped in the panel, nothing changed
    gone = OUT / "gone_line.wav"
    gone.write_bytes(Path(os.environ["EMOTE_WAV"]).read_bytes())
    with bpy.context.temp_override(**override("SEQUENCE_EDITOR", "WINDOW")):
        bpy.ops.sequencer.sound_strip_add(filepath=str(gone), frame_start=1, channel=4)
    gone.unlink()
    settings().head.emote.strip_name = next(x.name for x in module("emote_blender.audio_strips")
                                 .sound_strips(bpy.context.scene) if "gone" in x.name)
    n = len(settings().head.emote_takes)
    mouse_over_sidebar()
    yield 0.3
    with bpy.context.temp_override(**override()):
        try:
            ret = bpy.ops.emote.generate("INVOKE_DEFAULT")
        except RuntimeError as exc:  # an operator's ERROR report reaches a calling script so
            ret = {"CANCELLED"} if "missing" in str(exc) else str(exc)
    yield 1.0
    shot("missing_audio_error")
    red = red_pixels_in_sidebar(OUT / FINDINGS["shots"][-1])
    check("the error message is visible in the sidebar", red > 50, red_pixels=red)
    err = settings().last_error
    check("a missing audio file is refused in words and changes nothing",
          ret == {"CANCELLED"} and "missing" in err.lower() and "relink" in err.lower()
          and len(settings().head.emote_takes) == n, error=err)


def renamed_rig_name(name: str) -> str:
    """What a Character Creator export calls an ARKit shape: CC_Base_Body_Mouth_Smile_L."""
    channels = module("emote_blender.channels")
    arkit = channels.canonical(name)
    words = [w for w in __import__("re").findall(r"[a-z]+|[A-Z][a-z]*", arkit)]
    words[-1] = {"Left": "L", "Right": "R"}.get(words[-1], words[-1])
    return "CC_Base_Body_" + "_".join(w[:1].upper() + w[1:] for w in words)


def second_character():
    """A second character with a renamed rig (CC4 names, mouthClose as LipSeal, a name no
    convention knows) gets its own strip, emotion and mapping in the panel, and its own take."""
    first = settings().head
    first_takes, first_action = takes_of(first), shape_action(first)
    with bpy.context.temp_override(**override()):
        bpy.ops.emote.add_default_head("INVOKE_DEFAULT")
    yield 1.0
    head = settings().head
    if not check("a second head becomes the panel's head", head is not None and head != first,
                 head=getattr(head, "name", None)):
        return
    first.location.x -= 0.3  # the new head stays where Add default head framed it
    channels = module("emote_blender.channels")
    renamed = {}
    for kb in head.data.shape_keys.key_blocks[1:]:
        role = channels.identify(kb.name)
        if role is None or role.preset:
            continue
        new = "LipSeal" if kb.name == "mouthClose" else renamed_rig_name(kb.name)
        renamed[kb.name] = kb.name = new
    # its own strip (the same line again, later on the timeline) and its own emotion
    with bpy.context.temp_override(**override("SEQUENCE_EDITOR", "WINDOW")):
        bpy.ops.sequencer.sound_strip_add(filepath=os.environ["EMOTE_WAV"], frame_start=200,
                                          channel=5)
    scene = bpy.context.scene
    strip = [x for x in module("emote_blender.audio_strips").sound_strips(scene)
             if int(x.frame_final_start) == 200][0]
    scene.frame_end = max(scene.frame_end, int(strip.frame_final_end))
    c = head.emote
    c.strip_name = strip.name
    for frame, emo in ((200, "SAD"), (260, "ANGRY")):
        c.emotion = emo
        head.keyframe_insert("emote.emotion", frame=frame)
    # the mapping editor (the EMOTE Mapping panel): From names, then the key no convention names
    mouse_over_sidebar()
    with bpy.context.temp_override(**override()):
        bpy.ops.emote.mapping_fill("INVOKE_DEFAULT")
    yield 1.0
    rows = {r.channel: r for r in c.mapping}
    check("From names fills one row per model channel, the renamed keys found",
          len(rows) >= 40 and rows["mouthSmile_L"].target == "CC_Base_Body_Mouth_Smile_L"
          and rows["mouthClose"].target == "", rows=len(rows),
          smile=getattr(rows.get("mouthSmile_L"), "target", None))
    rows["mouthClose"].target, rows["mouthClose"].gain = "LipSeal", 1.2
    c.mapping_index = list(c.mapping).index(rows["mouthClose"])
    scene.frame_set(230)
    ui = region(area("VIEW_3D"), "UI")
    x, y = ui.x + ui.width // 2, bpy.context.window_manager.windows[0].height - (ui.y
                                                                                 + ui.height // 2)
    xdo("mousemove", str(x), str(y), "click", "--repeat", "25", "--delay", "30", "5")
    yield 3.5  # the wheel scrolls the sidebar down to the mapping panel
    shot("second_character_mapping")
    xdo("mousemove", str(x), str(y), "click", "--repeat", "25", "--delay", "30", "4")
    yield 1.5
    yield from generate("second_character", shots_every=None)
    rec = FINDINGS["runs"]["second_character"]
    take = head.emote_takes[-1] if len(head.emote_takes) else None
    check("the second character gets its own take from its own strip and emotion",
          take is not None and len(head.emote_takes) == 1 and take.strip == strip.name
          and "sad" in take.emotion and take.first_frame == 200 and not rec["last_error"],
          take=getattr(take, "name", None), emotion=getattr(take, "emotion", None), **rec)
    check("the first character's takes stay as they were",
          takes_of(first) == first_takes and shape_action(first) == first_action,
          before=first_takes, after=takes_of(first))
    key = head.data.shape_keys
    seen = {"CC_Base_Body_Mouth_Funnel": [], "LipSeal": [], "CC_Base_Body_Mouth_Lower_Down_L": []}
    for fr in range(200, 330, 6):
        scene.frame_set(fr)
        for k in seen:
            seen[k].append(round(key.key_blocks[k].value, 3))
    check("the renamed rig's keys move, the mapped LipSeal too",
          all(len(set(v)) > 3 for v in seen.values()), **seen)
    raw = module("emote_blender.face_life").load_raw(take.action) if take else None
    blender_compat = module("emote_blender.blender_compat")
    fc = next((f for f in blender_compat.action_fcurves(take.action)
               if f.data_path == 'key_blocks["LipSeal"].value'), None) if take else None
    ok = raw is not None and fc is not None
    if ok:
        col = raw["exp_names"].index("mouthClose")
        want = [1.2 * float(v) for v in raw["exp"][:, col]]
        got = [kp.co[1] for kp in fc.keyframe_points]
        ok = len(got) == len(want) and max(abs(a - b) for a, b in zip(got, want)) < 1e-4
    check("the mapping row drives LipSeal with its gain", ok,
          unmatched=settings().unmatched, notes=settings().bake_notes)
    scene.frame_set(236)
    yield 0.5
    shot("two_characters")


def scenario_reopen():
    yield 2.0
    saved = json.loads((OUT / "findings_main.json").read_text()).get("saved", {})
    check("the extension is enabled after a restart", hasattr(bpy.types.Scene, "emote"))
    head = settings().head
    check("takes survive save and reopen", head is not None and
          [list(t) for t in takes_of(head)] == [list(t) for t in saved.get("takes", [])]
          and shape_action(head) == saved.get("action"), saved=saved, found=takes_of(head))
    v3d = area("VIEW_3D")
    v3d.spaces.active.show_region_ui = True
    region(v3d, "UI").active_panel_category = "EMOTE"
    bpy.context.scene.frame_set(45)
    yield 1.0
    shot("reopened")
    yield from generate("after_reopen", shots_every=1.0)
    rec = FINDINGS["runs"]["after_reopen"]
    check("Generate works in the reopened file", rec["takes_after"] == rec["takes_before"] + 1,
          **rec)


def runner(steps):
    def step():
        try:
            return float(next(steps))
        except StopIteration:
            pass
        except Exception:
            check("the scenario ran to its end", False, traceback=traceback.format_exc())
        FINDINGS["finished"] = True
        save()
        bpy.ops.wm.quit_blender()
        return None
    return step


OUT.mkdir(parents=True, exist_ok=True)
save()
bpy.app.timers.register(runner(scenario_main() if MODE == "main" else scenario_reopen()),
                        first_interval=1.0, persistent=True)
