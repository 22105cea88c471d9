"""The bpy-free parts of the Blender side: timing maths, emotion blending, channel matching,
request building, result checks and the runtime client's crash/hang/cancel handling."""

from __future__ import annotations

import json
import os
import stat
import sys
import time

import numpy as np
import pytest

from emote.emote_blender import (audio_strips, channels, emotion_curve, runtime_client, runtime_job,
                           runtime_request, runtime_result)
from emote.model_runtime.errors import RuntimeFailure

ROOT = __import__("pathlib").Path(__file__).resolve().parents[1]


def test_strip_timing_with_offset_trim_and_ntsc_rate():
    fps = audio_strips.scene_fps(30, 1.001)
    start, length, head, tail = 37, 60, 5, 10  # strip start and length, frames trimmed off
    end = start + length
    t = audio_strips.strip_timing(start, start, end, fps, trimmed_end=False)
    assert (t.first_frame, t.frame_count, t.audio_start_s, t.audio_end_s) == (
        start, length, 0.0, None)
    # Trimmed at the start and at the end: the audio window moves with the trims.
    t = audio_strips.strip_timing(start, start + head, end - tail, fps)
    assert (t.first_frame, t.frame_count) == (start + head, length - head - tail)
    assert t.audio_start_s == pytest.approx(head * 1.001 / 30)
    assert t.audio_end_s == pytest.approx((length - tail) * 1.001 / 30)
    # A strip starting between frames: result frame 0 is the first whole frame it covers.
    t = audio_strips.strip_timing(10.5, 10.5, 20.5, 25.0)
    assert (t.first_frame, t.frame_count) == (11, 10)
    assert t.audio_start_s == pytest.approx(0.5 / 25)
    with pytest.raises(ValueError):
        audio_strips.strip_timing(0, 3, 3, 25.0)


def test_blend_categories_crossfades_over_transition():
    cats = np.array([1] * 30 + [2] * 30)  # happy, then sad at frame 30
    w = emotion_curve.blend_categories(cats, fps=30.0, transition_s=0.4)  # 12 frames
    np.testing.assert_allclose(w.sum(axis=1), 1.0, atol=1e-6)
    assert np.all(w[:23, 1] == 1.0) and np.all(w[37:, 2] == 1.0)
    ramp = w[23:37, 2]
    assert np.all(np.diff(ramp) >= 0) and ramp[0] < 0.1 and ramp[-1] > 0.9
    assert w[29, 1] > w[29, 2] and w[30, 2] >= w[30, 1]  # the switch is at the keyframe
    np.testing.assert_array_equal(emotion_curve.blend_categories(cats, 30.0, 0.0)[:, 1],
                                  (cats == 1).astype(np.float32))
    assert emotion_curve.categories_from_samples([0.2, 1.6, 9.0]).tolist() == [0, 2, 7]
    with pytest.raises(ValueError):
        emotion_curve.blend_categories(np.array([8]), 30.0, 0.1)


def test_match_channels_flame_arkit_and_jaw_targets():
    m = channels.match_channels(["exp000", "exp001", "exp002"], ["exp_0", "Exp 1"], ["root",
                                                                                    "jaw"])
    assert m.shape_keys == {0: "exp_0", 1: "Exp 1"} and m.jaw_bone == "jaw"
    assert m.unmatched == ["exp002"]
    m = channels.match_channels(["mouthSmile_L", "jawOpen", "eyeBlink_R"],
                                ["mouthSmileLeft", "jawOpen", "eyeBlinkRight"], [])
    assert m.jaw_bone is None and m.jaw_open_key == "jawOpen"
    assert m.shape_keys == {0: "mouthSmileLeft", 2: "eyeBlinkRight"}
    assert m.unmatched == ["jawOpen"]  # the key is fed from the jaw rotation instead
    assert channels.normalise("mouth_lower_L") == channels.normalise("mouthLowerLeft")
    m = channels.match_channels(["exp0"], [], [])
    assert m.unmatched == ["exp0", "jaw"]
    np.testing.assert_allclose(channels.jaw_to_open([-0.1, 0.225, 1.0], 0.45), [0, 0.5, 1])


def test_build_request_checks_shapes(tmp_path):
    w = np.tile([0, 1, 0, 0, 0, 0, 0, 0], (4, 1))
    req = runtime_request.build_request(tmp_path / "a.wav", 0.5, None, 29.97, 4, "default", "x",
                                       w, np.full(4, 0.5), emotion_curve.EMOTIONS)
    assert req["emotion"]["names"][1] == "happy" and len(req["emotion"]["weights"]) == 4
    assert json.loads(json.dumps(req)) == req
    with pytest.raises(ValueError, match="do not match"):
        runtime_request.build_request("a.wav", 0, None, 30, 5, "default", "x", w, np.zeros(5),
                                     emotion_curve.EMOTIONS)


def test_read_result_rejects_bad_files(tmp_path):
    good = tmp_path / "r.npz"
    np.savez(good, fps=30.0, exp=np.zeros((5, 2), np.float32), jaw=np.zeros((5, 3), np.float32),
             exp_names=np.array(["a", "b"]), model_id="m", head_id="h")
    r = runtime_result.read_result(good, 5)
    assert r["exp"].shape == (5, 2) and r["exp_names"] == ["a", "b"]
    with pytest.raises(RuntimeFailure, match="needs 6"):
        runtime_result.read_result(good, 6)
    nan = tmp_path / "n.npz"
    np.savez(nan, fps=30.0, exp=np.full((5, 2), np.nan, np.float32),
             jaw=np.zeros((5, 3), np.float32), exp_names=np.array(["a", "b"]))
    with pytest.raises(RuntimeFailure, match="NaN"):
        runtime_result.read_result(nan, 5)
    with pytest.raises(RuntimeFailure) as err:
        runtime_result.read_result(tmp_path / "missing.npz", 5)
    assert err.value.kind == "bad_result"


def _fake_runtime(tmp_path, body: str) -> str:
    """An executable standing in for the runtime interpreter (ignores its arguments)."""
    path = tmp_path / "fake_python"
    path.write_text(f"#!{sys.executable}\nimport sys, time, json\n{body}\n")
    path.chmod(path.stat().st_mode | stat.S_IEXEC)
    return str(path)


REQ = {"frame_count": 3}


@pytest.mark.skipif(os.name == "nt", reason="fake interpreter is a script with a shebang")
def test_client_reports_crash_hang_error_and_cancel(tmp_path):
    crash = _fake_runtime(tmp_path, "print(json.dumps({'event': 'progress', 'stage': 'audio', "
                          "'done': 1, 'total': 4}), flush=True)\n"
                          "sys.stderr.write('Segmentation fault in libtorch\\n'); sys.exit(139)")
    job = runtime_job.wait(runtime_client.start(REQ, crash, tmp_path, use_server=False), 30)
    assert job.state == "error" and job.error.kind == "runtime_crashed"
    assert "139" in job.error.message and "Segmentation fault" in job.error.message
    assert (job.done, job.total, job.stage) == (1, 4, "audio")

    err = _fake_runtime(tmp_path, "print('some library chatter')\nprint(json.dumps({'event': "
                        "'error', 'kind': 'too_short', 'message': 'Audio too short.'}))\n"
                        "sys.exit(2)")
    job = runtime_job.wait(runtime_client.start(REQ, err, tmp_path, use_server=False), 30)
    assert (job.error.kind, job.error.message) == ("too_short", "Audio too short.")

    hang = _fake_runtime(tmp_path, "time.sleep(60)")
    job = runtime_client.start(REQ, hang, tmp_path, use_server=False)
    job.stall_timeout_s = 0.5
    t0 = time.monotonic()
    runtime_job.wait(job, 30)
    assert job.error.kind == "runtime_hung" and time.monotonic() - t0 < 10
    assert job._proc.poll() is not None  # killed

    job = runtime_client.start(REQ, hang, tmp_path, use_server=False)
    job.cancel()
    assert job.state == "cancelled" and job._proc.poll() is not None

    with pytest.raises(RuntimeFailure, match="Set up runtime"):
        runtime_client.start(REQ, tmp_path / "no_such_python", tmp_path, use_server=False)


@pytest.mark.skipif(os.name == "nt", reason="fake interpreter is a script with a shebang")
def test_serve_process_routes_events_and_notices_death(tmp_path):
    serve = _fake_runtime(tmp_path, (
        "print(json.dumps({'event': 'ready'}), flush=True)\n"
        "for line in sys.stdin:\n"
        "    m = json.loads(line)\n"
        "    if m['request'].get('die'): sys.exit(3)\n"
        "    print(json.dumps({'event': 'progress', 'id': m['id'], 'stage': 'net', 'done': 1,"
        " 'total': 1}), flush=True)\n"
        "    print(json.dumps({'event': 'done', 'id': m['id'], 'out': m['out']}), flush=True)\n"))
    try:
        j1 = runtime_job.wait(runtime_client.start(REQ, serve, tmp_path), 30)
        j2 = runtime_job.wait(runtime_client.start(REQ, serve, tmp_path), 30)
        assert j1.state == j2.state == "done"
        server = runtime_client._SERVER
        assert server is not None and server.alive  # one warm process served both
        j3 = runtime_job.wait(runtime_client.start({"die": 1}, serve, tmp_path), 30)
        assert j3.error.kind == "runtime_crashed" and "exit code 3" in j3.error.message
        j4 = runtime_job.wait(runtime_client.start(REQ, serve, tmp_path), 30)
        assert j4.state == "done" and runtime_client._SERVER is not server  # restarted
    finally:
        runtime_client.shutdown_server()


@pytest.mark.skipif(os.name == "nt", reason="fake interpreter is a script with a shebang")
def test_cancel_on_the_warm_server_keeps_it_and_sends_the_cancel(tmp_path):
    """Esc drops the Generate but not the warm runtime: the next one runs on the same process."""
    seen = tmp_path / "stdin_lines.txt"
    serve = _fake_runtime(tmp_path, (
        "print(json.dumps({'event': 'ready'}), flush=True)\n"
        f"log = open({str(seen)!r}, 'a')\n"
        "for line in sys.stdin:\n"
        "    log.write(line); log.flush()\n"
        "    m = json.loads(line)\n"
        "    if m.get('cmd') == 'cancel':\n"
        "        print(json.dumps({'event': 'error', 'id': m['id'], 'kind': 'cancelled',"
        " 'message': 'x'}), flush=True); continue\n"
        "    if m['request'].get('slow'):\n"
        "        print(json.dumps({'event': 'progress', 'id': m['id'], 'stage': 'inference',"
        " 'done': 1, 'total': 9}), flush=True); continue\n"
        "    print(json.dumps({'event': 'done', 'id': m['id'], 'out': m['out']}), flush=True)\n"))
    try:
        job = runtime_client.start({"slow": 1}, serve, tmp_path)
        deadline = time.monotonic() + 20
        while job.stage != "inference" and time.monotonic() < deadline:
            job.poll()
            time.sleep(0.02)
        server = runtime_client._SERVER
        job.cancel()
        assert job.state == "cancelled" and job.error.kind == "cancelled"
        assert server.alive
        nxt = runtime_job.wait(runtime_client.start(REQ, serve, tmp_path), 30)
        assert nxt.state == "done" and runtime_client._SERVER is server
        sent = [json.loads(x) for x in seen.read_text().splitlines()]
        assert {"cmd": "cancel", "id": job._id} in sent
    finally:
        runtime_client.shutdown_server()


def test_progress_is_one_bar_in_words():
    from emote.emote_blender import job_progress

    order = ["starting runtime", "queued", "load_model", "load_audio"]
    fractions = [job_progress.describe(s)[0] for s in order]
    fractions += [job_progress.describe("inference", d, 10)[0] for d in range(11)]
    fractions += [job_progress.describe(s)[0] for s in ("write", "done", "baking")]
    assert fractions == sorted(fractions) and 0 <= fractions[0] and fractions[-1] <= 1
    assert job_progress.describe("inference", 4, 10)[1] == "Analysing speech 40%"
    assert "loading" in job_progress.describe("starting runtime")[1].lower()
    assert job_progress.describe("load_model")[1] == "Loading model"
    for stage in order + ["inference", "write", "done", "baking", "something new"]:
        assert "_" not in job_progress.describe(stage, 1, 2)[1]
    assert job_progress.advance(0.5, 0.2) == 0.5


@pytest.mark.skipif(os.name == "nt", reason="fake interpreter is a script with a shebang")
def test_job_folders_are_removed_after_use_and_at_exit(tmp_path):
    import subprocess

    done = _fake_runtime(tmp_path, "print(json.dumps({'event': 'done'}), flush=True)")
    job = runtime_job.wait(runtime_client.start(REQ, done, tmp_path, use_server=False), 30)
    assert job.state == "done" and job.folder.is_dir()
    runtime_job.discard(job)
    assert not job.folder.exists()
    # A process that exits (Blender quitting) removes the job folders it made, server's too.
    code = ("import sys, json\n"
            "from emote.emote_blender import runtime_client as rc, runtime_job\n"
            "job = runtime_job.wait(rc.start({'frame_count': 3}, sys.argv[1], sys.argv[2], "
            "use_server=False), 30)\n"
            "srv = rc.start({'frame_count': 3}, sys.argv[1], sys.argv[2], use_server=True)\n"
            "print(json.dumps([str(job.folder), str(srv.folder), str(rc._SERVER.folder)]))\n")
    work = tmp_path / "work"
    res = subprocess.run([sys.executable, "-c", code, done, str(work)], capture_output=True,
                         text=True, timeout=60, cwd=str(tmp_path),
                         env=dict(os.environ, PYTHONPATH=str(ROOT / "scripts" / "devpath")))
    assert res.returncode == 0, res.stderr
    folders = json.loads(res.stdout.splitlines()[-1])
    assert len(folders) == 3 and all(str(work) in f for f in folders)
    assert list(work.iterdir()) == []
