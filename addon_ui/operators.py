"""Operators of the EMOTE panel. Thin: they gather input, call emote_blender, report in words."""

from __future__ import annotations

import sys
from pathlib import Path

import bpy
from bpy.props import StringProperty
from bpy_extras.io_utils import ExportHelper, ImportHelper

from .preferences import prefs, runtime_python, setup_folder
from emote_blender import (audio_strips, generate, heads, runtime_client, runtime_setup,
                           takes)
from emote_blender import export as exporter
from model_runtime.errors import EmoteInputError

_ACTIVE: dict = {}  # the Generate in flight: {"job", "prepared", "head"}


def chosen_strip(context):
    """The strip named in the panel, else the sequencer's active/selected sound strip."""
    settings = context.scene.emote
    seq_scene = audio_strips.sequencer_scene(context)
    if settings.strip_name:
        for s in audio_strips.sound_strips(seq_scene):
            if s.name == settings.strip_name:
                return s
        return None
    return audio_strips.default_strip(seq_scene)


def chosen_model(settings) -> str:
    if settings.model_source == "FOLDER":
        return bpy.path.abspath(settings.checkpoint_dir).rstrip("/\\")
    return "default"


def _report_failure(settings, exc: Exception) -> str:
    msg = getattr(exc, "message", None) or str(exc)
    settings.last_error = msg
    settings.running, settings.progress, settings.stage = False, 0.0, ""
    return msg


def _after_bake(settings, cmap) -> None:
    settings.unmatched = ", ".join(cmap.unmatched)
    settings.last_error = ""
    settings.running, settings.progress, settings.stage = False, 1.0, "done"
    bpy.ops.ed.undo_push(message="EMOTE Generate")


class EMOTE_OT_generate(bpy.types.Operator):
    """Animate the head from the audio strip with the keyframed emotion (Esc cancels)"""

    bl_idname = "emote.generate"
    bl_label = "Generate"
    bl_options = {"REGISTER"}

    _timer = None

    @classmethod
    def poll(cls, context):
        return not _ACTIVE and context.scene.emote.head is not None

    def _gather(self, context):
        s = context.scene.emote
        return generate.prepare(context.scene, s.head, chosen_strip(context), chosen_model(s),
                                s.style)

    def execute(self, context):
        """Synchronous path: background mode, scripts and tests."""
        s = context.scene.emote
        s.last_error = ""
        try:
            prepared = self._gather(context)
            p = prefs(context)
            job = runtime_client.start(prepared.request, runtime_python(context),
                                       use_server=bool(p.use_server) if p else False)
            runtime_client.wait(job, timeout_s=3600.0)
            _take, cmap = generate.finish(s.head, prepared, job)
        except (EmoteInputError, runtime_client.RuntimeFailure, ValueError, OSError) as exc:
            self.report({"ERROR"}, _report_failure(s, exc))
            return {"CANCELLED"}
        _after_bake(s, cmap)
        return {"FINISHED"}

    def invoke(self, context, event):
        if bpy.app.background:
            return self.execute(context)
        s = context.scene.emote
        s.last_error = ""
        try:
            prepared = self._gather(context)
            p = prefs(context)
            job = runtime_client.start(prepared.request, runtime_python(context),
                                       use_server=bool(p.use_server) if p else True)
            if p:
                job.stall_timeout_s = p.stall_timeout_s
        except (EmoteInputError, runtime_client.RuntimeFailure, ValueError, OSError) as exc:
            self.report({"ERROR"}, _report_failure(s, exc))
            return {"CANCELLED"}
        _ACTIVE.update(job=job, prepared=prepared, head=s.head)
        s.running, s.progress, s.stage = True, 0.0, job.stage
        self._timer = context.window_manager.event_timer_add(0.1, window=context.window)
        context.window_manager.modal_handler_add(self)
        return {"RUNNING_MODAL"}

    def modal(self, context, event):
        job = _ACTIVE.get("job")
        if event.type == "ESC" and job is not None:
            job.cancel()
        if event.type != "TIMER" and not (job is not None and job.finished):
            return {"PASS_THROUGH"}
        s = context.scene.emote
        job.poll()
        s.progress, s.stage = job.fraction, job.stage
        context.workspace.status_text_set(f"EMOTE: {job.stage} {job.done}/{job.total}"
                                          if job.total else f"EMOTE: {job.stage}")
        _redraw(context)
        if not job.finished:
            return {"PASS_THROUGH"}
        return self._end(context, job)

    def _end(self, context, job):
        context.window_manager.event_timer_remove(self._timer)
        context.workspace.status_text_set(None)
        s = context.scene.emote
        prepared, head = _ACTIVE.get("prepared"), _ACTIVE.get("head")
        _ACTIVE.clear()
        try:
            _take, cmap = generate.finish(head, prepared, job)
        except (EmoteInputError, runtime_client.RuntimeFailure, ValueError, OSError) as exc:
            self.report({"WARNING" if job.state == "cancelled" else "ERROR"},
                        _report_failure(s, exc))
            _redraw(context)
            return {"CANCELLED"}
        _after_bake(s, cmap)
        self.report({"INFO"}, f"EMOTE: baked {_take.name}")
        _redraw(context)
        return {"FINISHED"}


def _redraw(context):
    for window in context.window_manager.windows:
        for area in window.screen.areas:
            if area.type in ("VIEW_3D", "SEQUENCE_EDITOR", "PROPERTIES"):
                area.tag_redraw()


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
        except (runtime_setup.SetupBusy, OSError) as exc:
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
        except (runtime_setup.SetupBusy, OSError) as exc:
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
        except (EmoteInputError, OSError) as exc:
            msg = getattr(exc, "message", str(exc))
            context.scene.emote.last_error = msg
            self.report({"ERROR"}, msg)
            return {"CANCELLED"}
        obj, _rig = heads.build_head(model, collection=context.collection)
        context.scene.emote.head = obj
        return {"FINISHED"}


def _default_head_path():
    try:
        from model_runtime.heads.open_head import default_head_path
        path = default_head_path()
    except (ImportError, EmoteInputError, OSError):
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
        context.scene.emote.head = obj
        return {"FINISHED"}


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
        return context.scene.emote.head is not None

    def execute(self, context):
        try:
            self.export(context, context.scene.emote.head, self.filepath)
        except (ValueError, RuntimeError, OSError) as exc:
            self.report({"ERROR"}, str(exc))
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


def register() -> None:
    for cls in CLASSES:
        bpy.utils.register_class(cls)


def unregister() -> None:
    _ACTIVE.clear()
    runtime_client.shutdown_server()
    for cls in reversed(CLASSES):
        bpy.utils.unregister_class(cls)
