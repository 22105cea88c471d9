"""Operators of the EMOTE panel. Thin: they gather input, call emote_blender, report in words."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import bpy
from bpy.props import StringProperty
from bpy_extras.io_utils import ExportHelper, ImportHelper

from .preferences import prefs, runtime_python, runtime_status, setup_folder
from ..emote_blender import (audio_strips, characters, generate, heads, job_progress, preview,
                           runtime_client, runtime_job, runtime_setup, takes)
from ..emote_blender import export as exporter
from ..model_runtime.errors import EmoteError

_ACTIVE: dict = {}  # the Generate in flight: {"job", "prepared", "head"}
LAST_TIMINGS: dict = {}  # seconds of the last modal Generate: total, runtime, bake, undo
QUIET_START_S = 0.3  # the panel redraws the progress only once a Generate has run this long


def character(context):
    """The settings of the head the panel shows (its own strip, style, emotion, mapping)."""
    return characters.settings_of(context.scene.emote.head)


def chosen_strip(context):
    """The head's strip named in the panel, else the sequencer's active/selected sound strip."""
    settings = character(context)
    seq_scene = audio_strips.sequencer_scene(context)
    if settings is None:
        return None
    if settings.strip_name:
        for s in audio_strips.sound_strips(seq_scene):
            if s.name == settings.strip_name:
                return s
        return None
    return audio_strips.default_strip(seq_scene)


def generate_blocker(context) -> str:
    """Why Generate cannot run now (shown in its tooltip), or '' when it can."""
    settings = context.scene.emote
    if _ACTIVE:
        return "A Generate is already running; wait for it or press Esc"
    if settings.head is None:
        return "Choose a head first (or press Add default head)"
    if chosen_strip(context) is None:
        if character(context).strip_name:
            return (f"The sound strip {character(context).strip_name!r} of "
                    f"{settings.head.name} is not in the Video Sequencer")
        return "Add the dialogue to the Video Sequencer as a sound strip first"
    state, words = runtime_status(context)
    if state != "ready":
        return words if state == "running" else f"{words} (see the runtime box in the panel)"
    return ""


def chosen_model(settings) -> str:
    if settings.model_source == "FOLDER":
        return bpy.path.abspath(settings.checkpoint_dir).rstrip("/\\")
    return "default"


def _report_failure(settings, exc: Exception) -> str:
    msg = getattr(exc, "message", None) or str(exc)
    settings.last_error = msg
    if not bpy.app.background:
        _redraw(bpy.context)  # show it in the panel now, not at the next mouse move
    return msg


def _start_job(context, prepared, use_server_default: bool):
    """Start the runtime on a prepared Generate, as the add-on preferences say (warm server or
    one-shot, hang timeout); `use_server_default` applies when there are no preferences."""
    p = prefs(context)
    job = runtime_client.start(prepared.request, runtime_python(context),
                               use_server=bool(p.use_server) if p else use_server_default)
    if p:
        job.stall_timeout_s = p.stall_timeout_s
    return job


def _after_bake(settings, cmap) -> None:
    settings.unmatched = ", ".join(cmap.unmatched)
    notes = [cmap.retarget] if getattr(cmap, "retarget", "") else []
    notes += getattr(cmap, "mapping_notes", [])
    unknown = getattr(cmap, "unknown_keys", [])
    if unknown:
        notes.append(f"{len(unknown)} shape keys left alone (no known name): "
                     + ", ".join(unknown[:8]) + (" ..." if len(unknown) > 8 else ""))
    settings.bake_notes = "  ".join(notes)
    settings.last_error = ""
    bpy.ops.ed.undo_push(message="EMOTE Generate")


class EMOTE_OT_generate(bpy.types.Operator):
    """Animate the head from the audio strip with the keyframed emotion (Esc cancels)"""

    bl_idname = "emote.generate"
    bl_label = "Generate"
    bl_options = {"REGISTER"}

    _timer = None

    @classmethod
    def poll(cls, context):
        why = generate_blocker(context)
        if why:
            cls.poll_message_set(why)
        return not why

    def _gather(self, context):
        s = context.scene.emote
        characters.migrate_scene(context.scene)  # a file from before heads kept their settings
        return generate.prepare(context.scene, s.head, chosen_strip(context), chosen_model(s),
                                character(context).style)

    def execute(self, context):
        """Synchronous path: background mode, scripts and tests."""
        s = context.scene.emote
        s.last_error = ""
        job = None
        try:
            prepared = self._gather(context)
            job = _start_job(context, prepared, use_server_default=False)
            runtime_job.wait(job, timeout_s=3600.0)
            _take, cmap = generate.finish(s.head, prepared, job)
        except (EmoteError, ValueError, OSError) as exc:
            self.report({"ERROR"}, _report_failure(s, exc))
            return {"CANCELLED"}
        finally:
            if job is not None:
                runtime_job.discard(job)  # the job folder's result is baked or useless
        _after_bake(s, cmap)
        for text in job.warnings:
            self.report({"WARNING"}, text)
        return {"FINISHED"}

    def invoke(self, context, event):
        if bpy.app.background:
            return self.execute(context)
        s = context.scene.emote
        s.last_error = ""
        self._t_click = time.monotonic()
        try:
            prepared = self._gather(context)
            self._t_prepared = time.monotonic()
            job = _start_job(context, prepared, use_server_default=True)
        except (EmoteError, ValueError, OSError) as exc:
            self.report({"ERROR"}, _report_failure(s, exc))
            return {"CANCELLED"}
        fraction, label = job_progress.describe(job.stage)
        _ACTIVE.update(job=job, prepared=prepared, head=s.head, fraction=fraction, label=label,
                       since=self._t_click)
        self._timer = context.window_manager.event_timer_add(0.02, window=context.window)
        context.window_manager.modal_handler_add(self)
        return {"RUNNING_MODAL"}

    def modal(self, context, event):
        try:
            return self._step(context, event)
        except Exception:
            # a bug must not leave Generate greyed out ("already running") for the session
            job = _ACTIVE.get("job")
            _ACTIVE.clear()
            context.window_manager.event_timer_remove(self._timer)
            context.workspace.status_text_set(None)
            if job is not None:
                job.cancel()
            raise

    def _step(self, context, event):
        job = _ACTIVE.get("job")
        if job is None:  # a file was loaded meanwhile (load_pre dropped the job)
            context.window_manager.event_timer_remove(self._timer)
            return {"CANCELLED"}
        if event.type == "ESC":
            job.cancel()
        job.poll()  # on every event, not only the timer's: reading new lines costs nothing
        if not job.finished:
            self._show(context, *job_progress.describe(job.stage, job.done, job.total))
            return {"PASS_THROUGH"}
        return self._end(context, job)

    @staticmethod
    def _show(context, fraction: float, label: str) -> None:
        """Progress lives in Python, not in scene properties: setting those would re-evaluate
        the scene and redraw every editor on each tick, taking CPU from the runtime. The panel
        is redrawn when the bar moves or the words change, and not at all in the first
        QUIET_START_S (a warm Generate is done by then)."""
        fraction = job_progress.advance(_ACTIVE.get("fraction", 0.0), fraction)
        changed = (abs(fraction - _ACTIVE.get("fraction", 0.0)) >= 0.005
                   or label != _ACTIVE.get("label"))
        _ACTIVE.update(fraction=fraction, label=label)
        if time.monotonic() - _ACTIVE.get("since", 0.0) < QUIET_START_S:
            return
        if not changed and _ACTIVE.get("drawn"):
            return
        _ACTIVE["drawn"] = True
        context.workspace.status_text_set(f"EMOTE: {label}")
        _redraw(context)

    def _end(self, context, job):
        context.window_manager.event_timer_remove(self._timer)
        context.workspace.status_text_set(None)
        s = context.scene.emote
        prepared, head = _ACTIVE.get("prepared"), _ACTIVE.get("head")
        _ACTIVE.clear()
        t_bake = time.monotonic()
        try:
            _take, cmap = generate.finish(head, prepared, job)
        except (EmoteError, ValueError, OSError) as exc:
            self.report({"WARNING" if job.state == "cancelled" else "ERROR"},
                        _report_failure(s, exc))
            _redraw(context)
            return {"CANCELLED"}
        finally:
            runtime_job.discard(job)
        t_undo = time.monotonic()
        _after_bake(s, cmap)
        t_end = time.monotonic()
        LAST_TIMINGS.update(total_s=t_end - self._t_click,
                            prepare_s=self._t_prepared - self._t_click,
                            runtime_s=job.runtime_s, inference_s=job.inference_s,
                            to_bake_s=t_bake - job.started - job.runtime_s,
                            bake_s=t_undo - t_bake, undo_s=t_end - t_undo)
        for text in job.warnings:
            self.report({"WARNING"}, text)
        self.report({"INFO"}, f"EMOTE: baked {_take.name} in {t_end - self._t_click:.1f} s")
        _redraw(context, everything=True)
        return {"FINISHED"}


def progress_state() -> tuple[float, str] | None:
    """(share done, words) of the Generate in flight for the panel's bar, or None."""
    if not _ACTIVE:
        return None
    return _ACTIVE.get("fraction", 0.0), _ACTIVE.get("label", "Working")


def _redraw(context, everything: bool = False):
    """Redraw the sidebars that show the panel; `everything` also redraws the views (new keys)."""
    for window in context.window_manager.windows:
        for area in window.screen.areas:
            if area.type not in ("VIEW_3D", "SEQUENCE_EDITOR", "PROPERTIES"):
                continue
            if everything:
                area.tag_redraw()
                continue
            for region in area.regions:
                if region.type == "UI":
                    region.tag_redraw()


class EMOTE_OT_cancel(bpy.types.Operator):
    """Stop the running Generate; the scene stays as it was"""

    bl_idname = "emote.cancel"
    bl_label = "Cancel"

    @classmethod
    def poll(cls, context):
        return bool(_ACTIVE)

    def execute(self, context):
        job = _ACTIVE.get("job")
        if job is not None:
            job.cancel()
        return {"FINISHED"}


class EMOTE_OT_setup_runtime(bpy.types.Operator):
    """Download and install the runtime's pinned packages (CPU torch and the rest) for Blender's
    own Python, replacing any earlier set-up (Repair); it counts as set up only once they all
    import"""

    bl_idname = "emote.setup_runtime"
    bl_label = "Set up runtime"

    _run = None
    _timer = None

    @classmethod
    def poll(cls, context):
        run = runtime_setup.current()
        if run is not None and run.running:
            cls.poll_message_set("The runtime is being set up")
            return False
        return True

    def execute(self, context):
        run = runtime_setup.current()
        if run is not None and run.running:
            return {"CANCELLED"}  # a second click while it runs does nothing
        if not bpy.app.online_access:
            self.report({"ERROR"}, "Online access is off. Allow it in Preferences > System > "
                        "Network, or set 'Runtime Python' to an environment that has torch.")
            return {"CANCELLED"}
        runtime_client.shutdown_server()  # a Repair replaces the folder it runs from
        try:
            self._run = runtime_setup.start_setup(setup_folder(), sys.executable)
        except (EmoteError, OSError) as exc:
            self.report({"ERROR"}, f"Runtime set-up not started: {exc}")
            return {"CANCELLED"}
        if bpy.app.background:
            self._run.wait()
            return self._end(context)
        self._timer = context.window_manager.event_timer_add(0.5, window=context.window)
        context.window_manager.modal_handler_add(self)
        return {"RUNNING_MODAL"}

    def modal(self, context, event):
        if event.type != "TIMER":
            return {"PASS_THROUGH"}
        context.workspace.status_text_set("EMOTE runtime set-up: " + self._run.progress_text())
        _redraw(context)
        if self._run.running:
            return {"PASS_THROUGH"}
        context.window_manager.event_timer_remove(self._timer)
        context.workspace.status_text_set(None)
        _redraw(context)
        return self._end(context)

    def _end(self, context):
        # The runtime box (preferences.draw_runtime_box) shows the outcome and its reason.
        if self._run.ok:
            s = context.scene.emote
            if s.last_error.startswith("The EMOTE runtime is not set up"):
                s.last_error = ""
            self.report({"INFO"}, "EMOTE runtime is ready.")
            return {"FINISHED"}
        self.report({"ERROR"}, f"Runtime set-up failed: {self._run.reason()} "
                    f"(details: {self._run.log})")
        return {"CANCELLED"}


class EMOTE_OT_remove_runtime(bpy.types.Operator):
    """Delete the packages 'Set up runtime' installed (bundled wheels stay with the extension)"""

    bl_idname = "emote.remove_runtime"
    bl_label = "Remove runtime"

    @classmethod
    def poll(cls, context):
        run = runtime_setup.current()
        return run is None or not run.running

    def invoke(self, context, event):
        return context.window_manager.invoke_confirm(self, event)

    def execute(self, context):
        runtime_client.shutdown_server()
        try:
            runtime_setup.remove_setup(setup_folder())
        except (EmoteError, OSError) as exc:
            self.report({"ERROR"}, f"Could not remove the runtime packages: {exc}")
            return {"CANCELLED"}
        self.report({"INFO"}, "EMOTE runtime packages removed.")
        return {"FINISHED"}


class EMOTE_OT_add_flame_head(bpy.types.Operator, ImportHelper):
    """Build a head (mesh, expression shape keys, rig) from a FLAME .pkl or head .npz file"""

    bl_idname = "emote.add_flame_head"
    bl_label = "Add FLAME head"
    bl_options = {"REGISTER", "UNDO"}

    filter_glob: StringProperty(default="*.pkl;*.npz", options={"HIDDEN"})

    def execute(self, context):
        try:
            model = heads.load_head_file(self.filepath, runtime_python(context))
        except (EmoteError, OSError) as exc:
            msg = getattr(exc, "message", str(exc))
            context.scene.emote.last_error = msg
            self.report({"ERROR"}, msg)
            return {"CANCELLED"}
        obj, _rig = heads.build_head(model, collection=context.collection)
        context.scene.emote.head = obj
        frame_in_viewports(context, obj)
        return {"FINISHED"}


def _default_head_path():
    try:
        from ..model_runtime.heads.open_head import default_head_path
        path = default_head_path()
    except (ImportError, EmoteError, OSError):
        return None
    return path if path and Path(path).is_file() else None


class EMOTE_OT_add_default_head(bpy.types.Operator):
    """Add the bundled open head (ARKit-named expression channels, jaw bone)"""

    bl_idname = "emote.add_default_head"
    bl_label = "Add default head"
    bl_options = {"REGISTER", "UNDO"}

    @classmethod
    def poll(cls, context):
        return _default_head_path() is not None

    def execute(self, context):
        model = heads.load_head_file(_default_head_path())
        obj, _rig = heads.build_head(model, collection=context.collection)
        preview.colour_head(obj, model)  # skin, lips, brows, eyes: one material per face group
        context.scene.emote.head = obj
        frame_in_viewports(context, obj)
        return {"FINISHED"}


def frame_in_viewports(context, obj) -> None:
    """Select `obj` and frame it in every 3D View of the window (View > Frame Selected)."""
    for other in context.view_layer.objects:
        other.select_set(False)
    obj.select_set(True)
    context.view_layer.objects.active = obj
    if bpy.app.background or context.window is None:
        return
    for area in context.window.screen.areas:
        if area.type != "VIEW_3D":
            continue
        region = next((r for r in area.regions if r.type == "WINDOW"), None)
        if region is None:
            continue
        rv3d = area.spaces.active.region_3d
        if rv3d.view_perspective == "CAMERA":
            continue  # framing would move the user's camera view
        with context.temp_override(window=context.window, area=area, region=region):
            bpy.ops.view3d.view_axis(type="FRONT")
            bpy.ops.view3d.view_selected(use_all_regions=False)


class EMOTE_OT_take_delete(bpy.types.Operator):
    """Delete the selected take and its actions"""

    bl_idname = "emote.take_delete"
    bl_label = "Delete take"
    bl_options = {"REGISTER", "UNDO"}

    @classmethod
    def poll(cls, context):
        head = context.scene.emote.head
        return head is not None and takes.active(head) is not None

    def execute(self, context):
        head = context.scene.emote.head
        takes.delete(head, takes.active(head).name)
        return {"FINISHED"}


class _ExportBase:
    bl_options = {"REGISTER"}

    @classmethod
    def poll(cls, context):
        head = context.scene.emote.head
        if head is None:
            cls.poll_message_set("Choose a head first")
            return False
        if takes.active(head) is None:
            cls.poll_message_set("The head has no take yet: press Generate first")
            return False
        return True

    def execute(self, context):
        try:
            self.export(context, context.scene.emote.head, self.filepath)
        except (EmoteError, ValueError, RuntimeError, OSError) as exc:
            self.report({"ERROR"}, getattr(exc, "message", None) or str(exc))
            return {"CANCELLED"}
        self.report({"INFO"}, f"Exported {self.filepath}")
        return {"FINISHED"}


class EMOTE_OT_export_gltf(_ExportBase, bpy.types.Operator, ExportHelper):
    """Export the head with its active take as glTF binary (.glb)"""

    bl_idname = "emote.export_gltf"
    bl_label = "Export glTF"
    filename_ext = ".glb"
    filter_glob: StringProperty(default="*.glb;*.gltf", options={"HIDDEN"})
    export = staticmethod(exporter.export_gltf)


class EMOTE_OT_export_fbx(_ExportBase, bpy.types.Operator, ExportHelper):
    """Export the head with its active take as FBX (shape-key animation kept)"""

    bl_idname = "emote.export_fbx"
    bl_label = "Export FBX"
    filename_ext = ".fbx"
    filter_glob: StringProperty(default="*.fbx", options={"HIDDEN"})
    export = staticmethod(exporter.export_fbx)


CLASSES = (EMOTE_OT_generate, EMOTE_OT_cancel, EMOTE_OT_setup_runtime, EMOTE_OT_remove_runtime,
           EMOTE_OT_add_flame_head, EMOTE_OT_add_default_head, EMOTE_OT_take_delete,
           EMOTE_OT_export_gltf, EMOTE_OT_export_fbx)


register, _unregister_classes = bpy.utils.register_classes_factory(CLASSES)


def unregister() -> None:
    _ACTIVE.clear()
    runtime_client.shutdown_server()
    _unregister_classes()
