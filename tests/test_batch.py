"""`python -m model_runtime batch`: folders, CSV with per-line emotion, a corrupt file among good
ones, and resuming a batch that was already (partly) done."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from emote.model_runtime import batch
from emote.model_runtime.errors import EmoteInputError

ROOT = Path(__file__).resolve().parents[1]


def speech_like(path: Path, seconds: float, seed: int = 0, sr: int = 16000) -> Path:
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sr)) / sr
    x = (0.5 + 0.5 * np.sin(2 * np.pi * 4 * t)) * np.sign(np.sin(2 * np.pi * 130 * t)) * 0.3
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), (x + 0.05 * rng.standard_normal(t.size)).astype(np.float32), sr)
    return path


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory) -> Path:
    import torch

    from emote.model_runtime.checkpoints import build_model, save_checkpoint, tiny_config

    torch.manual_seed(0)
    cfg = tiny_config([f"exp{i:03d}" for i in range(6)], identities=("calm", "lively"))
    return save_checkpoint(build_model(cfg), cfg, tmp_path_factory.mktemp("m") / "tiny")


def run_cli(*args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")
    return subprocess.run([sys.executable, "-m", "model_runtime", "batch", *args],
                          capture_output=True, text=True, env=env, cwd=str(ROOT), timeout=300)


def read_report(path: Path) -> list[dict]:
    with path.open(newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def test_collect_lines_reads_folders_and_csv_with_per_line_settings(tmp_path):
    speech_like(tmp_path / "lines" / "a.wav", 0.5)
    speech_like(tmp_path / "lines" / "act2" / "a.wav", 0.5)
    (tmp_path / "lines" / "notes.txt").write_text("not audio")
    sheet = tmp_path / "sheet.csv"
    sheet.write_text("audio,name,emotion,intensity,style,start,end\n"
                     "lines/a.wav,greeting,happy,0.25,lively,0.1,0.4\n"
                     "lines/a.wav,,,,,,\n", encoding="utf-8")
    lines = batch.collect_lines([str(tmp_path / "lines"), str(sheet)], emotion="sad",
                                intensity=0.5)
    names = [ln.name for ln in lines]
    assert names == ["a", "act2__a", "greeting", "a_2"]  # unique: they name the output files
    g = lines[2]
    assert (g.emotion, g.intensity, g.style, g.start_s, g.end_s) == ("happy", 0.25, "lively",
                                                                     0.1, 0.4)
    assert (lines[3].emotion, lines[3].intensity, lines[3].style) == ("sad", 0.5, None)
    assert Path(g.audio).is_absolute() and Path(g.audio).is_file()

    bad = tmp_path / "bad.csv"
    bad.write_text("file,emotion\nx.wav,happy\n", encoding="utf-8")
    with pytest.raises(EmoteInputError) as err:
        batch.collect_lines([str(bad)])
    assert err.value.kind == "bad_request" and "'audio' column" in err.value.message
    with pytest.raises(EmoteInputError) as err:
        batch.collect_lines([str(tmp_path / "missing_folder")])
    assert err.value.kind == "missing_file"


def test_batch_skips_corrupt_file_and_resumes(tmp_path, tiny_model):
    folder = tmp_path / "lines"
    speech_like(folder / "a.wav", 1.0, seed=1)
    speech_like(folder / "scene2" / "b.wav", 1.3, seed=2)
    (folder / "broken.wav").write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunk" + os.urandom(200))
    sheet = tmp_path / "sheet.csv"
    with sheet.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["audio", "name", "emotion", "intensity"])
        w.writerow([str(folder / "a.wav"), "a_happy", "happy", "1.0"])
        w.writerow([str(folder / "a.wav"), "a_sad", "sad", "1.0"])
    out = tmp_path / "out"
    proc = run_cli(str(folder), str(sheet), "--out", str(out), "--model", str(tiny_model),
                   "--style", "calm", "--jobs", "1", "--fps", "30", "--progress", "jsonl")
    assert proc.returncode == 3, proc.stderr[-3000:]  # 3: done, but some lines failed
    summary = json.loads(proc.stdout.strip().splitlines()[-1])
    assert (summary["lines"], summary["generated"], summary["failed"]) == (5, 4, 1)
    assert "broken" in proc.stderr  # the failing line is named on stderr
    rows = {r["name"]: r for r in read_report(out / batch.REPORT_NAME)}
    assert rows["broken"]["status"] == "error" and rows["broken"]["message"]
    assert rows["broken"]["kind"] in ("unreadable_file", "unsupported_format", "bad_samples")
    done = ["a", "scene2__b", "a_happy", "a_sad"]
    assert all(rows[n]["status"] == "done" for n in done)
    assert not (out / "broken.npz").exists()
    results = {n: np.load(out / f"{n}.npz") for n in done}
    # the tiny model's 6 channels, plus eyeBlink_L/R appended for the blinks (face life is on)
    channels = 6 + 2
    assert results["a"]["exp"].shape == (30, channels)
    assert results["scene2__b"]["exp"].shape == (39, channels)
    assert float(results["a"]["fps"]) == 30.0
    # Same audio, other emotion: the per-line emotion from the CSV reached the network.
    assert np.abs(results["a_happy"]["exp"] - results["a_sad"]["exp"]).max() > 1e-4
    stamps = {n: (out / f"{n}.npz").stat().st_mtime_ns for n in done}

    # Second run: finished lines are skipped untouched, only the broken one is tried again.
    proc = run_cli(str(folder), str(sheet), "--out", str(out), "--model", str(tiny_model),
                   "--style", "calm", "--jobs", "1", "--progress", "jsonl")
    summary = json.loads(proc.stdout.strip().splitlines()[-1])
    assert (summary["skipped"], summary["generated"], summary["failed"]) == (4, 0, 1)
    assert {n: (out / f"{n}.npz").stat().st_mtime_ns for n in done} == stamps
    assert len(read_report(out / batch.REPORT_NAME)) == 5  # rebuilt: one row per line


def test_batch_without_default_model_fails_once_in_words(tmp_path, monkeypatch):
    monkeypatch.setenv("EMOTE_DEFAULT_MODEL_DIR", str(tmp_path / "no_model"))
    speech_like(tmp_path / "a.wav", 0.5)
    proc = run_cli(str(tmp_path / "a.wav"), "--out", str(tmp_path / "out"))
    assert proc.returncode == 2
    assert "No default model is installed" in proc.stderr and "Traceback" not in proc.stderr


def _stats(out: Path) -> dict:
    return {p.name: p.stat().st_mtime_ns for p in out.glob("*.npz")}


def test_rerun_with_other_settings_redoes_the_lines_and_says_so(tmp_path, tiny_model):
    speech_like(tmp_path / "lines" / "a.wav", 1.0, seed=1)
    speech_like(tmp_path / "lines" / "b.wav", 0.6, seed=2)
    out = tmp_path / "out"
    common = (str(tmp_path / "lines"), "--out", str(out), "--model", str(tiny_model), "--jobs",
              "1", "--progress", "jsonl")
    assert run_cli(*common, "--fps", "30").returncode == 0
    with np.load(out / "a.npz") as z:
        assert z["exp"].shape[0] == 30
    same = run_cli(*common, "--fps", "30")
    assert json.loads(same.stdout.splitlines()[-1])["skipped"] == 2
    proc = run_cli(*common, "--fps", "60")
    assert proc.returncode == 0, proc.stderr[-2000:]
    summary = json.loads(proc.stdout.splitlines()[-1])
    assert (summary["generated"], summary["skipped"]) == (2, 0)
    assert "Redoing 2 line(s)" in proc.stderr and "fps 30.0 -> 60.0" in proc.stderr
    with np.load(out / "a.npz") as z:
        assert z["exp"].shape[0] == 60 and float(z["fps"]) == 60.0
    # Another emotion for one line through a CSV: only that line is redone.
    sheet = tmp_path / "sheet.csv"  # saved by Excel: with a UTF-8 BOM
    sheet.write_text(f"\ufeffaudio,name,emotion\n{tmp_path / 'lines' / 'a.wav'},a,sad\n"
                     f"{tmp_path / 'lines' / 'b.wav'},b,neutral\n", encoding="utf-8")
    proc = run_cli(str(sheet), "--out", str(out), "--model", str(tiny_model), "--jobs", "1",
                   "--fps", "60", "--progress", "jsonl")
    summary = json.loads(proc.stdout.splitlines()[-1])
    assert (summary["generated"], summary["skipped"]) == (1, 1), proc.stderr
    assert "emotion neutral -> sad" in proc.stderr
    rows = read_report(out / batch.REPORT_NAME)
    assert sorted(r["name"] for r in rows) == ["a", "b"]
    assert {r["status"] for r in rows} == {"done"}


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_interrupted_batch_stops_workers_reports_and_resumes(tmp_path, tiny_model, sig):
    for i, n in enumerate("abcde"):
        speech_like(tmp_path / "lines" / f"{n}.wav", 0.6, seed=i)
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "model_runtime", "batch", str(tmp_path / "lines"), "--out",
           str(out), "--model", str(tiny_model), "--jobs", "1", "--progress", "jsonl"]
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1",
               EMOTE_TEST_HOLD_AT="inference:c.npz")  # line c waits until we interrupt
    proc = subprocess.Popen(cmd, cwd=str(ROOT), env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    worker_pid = None
    for line in proc.stderr:
        if line.startswith("EMOTE_TEST_HOLD "):
            worker_pid = int(line.rsplit("pid=", 1)[1])
            break
    assert worker_pid is not None, proc.communicate()
    proc.send_signal(sig)
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130, stderr
    assert "Traceback" not in stderr, stderr
    text = [ln for ln in stderr.splitlines() if ln.startswith("Interrupted")]
    assert len(text) == 1 and "2 of 5 lines done" in text[0] and "3 not done" in text[0]
    assert json.loads(stdout.splitlines()[-1])["kind"] == "cancelled"
    with pytest.raises(ProcessLookupError):  # the worker was stopped, not left writing
        os.kill(worker_pid, 0)
    assert sorted(p.name for p in out.glob("*.npz")) == ["a.npz", "b.npz"]
    assert not list(out.rglob("*.part"))
    rows = read_report(out / batch.REPORT_NAME)
    assert [(r["name"], r["status"]) for r in rows] == [
        ("a", "done"), ("b", "done"), ("c", "not done"), ("d", "not done"), ("e", "not done")]
    stamps = _stats(out)
    # The rerun does only what is missing, and the report then has each line once, done.
    env.pop("EMOTE_TEST_HOLD_AT")
    res = subprocess.run(cmd, cwd=str(ROOT), env=env, capture_output=True, text=True,
                         timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    summary = json.loads(res.stdout.splitlines()[-1])
    assert (summary["generated"], summary["skipped"]) == (3, 2)
    assert {k: v for k, v in _stats(out).items() if k in stamps} == stamps
    rows = read_report(out / batch.REPORT_NAME)
    assert [r["name"] for r in rows] == list("abcde")
    assert {r["status"] for r in rows} == {"done"}


def test_retry_failed_retries_only_the_failed_lines(tmp_path, tiny_model):
    lines = tmp_path / "lines"
    speech_like(lines / "a.wav", 0.6, seed=1)
    (lines / "broken.wav").write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunk" + os.urandom(200))
    out = tmp_path / "out"
    common = ("--out", str(out), "--model", str(tiny_model), "--jobs", "1", "--progress",
              "jsonl")
    assert run_cli(str(lines), *common).returncode == 3
    speech_like(lines / "broken.wav", 0.6, seed=2)  # the user fixes the file...
    speech_like(tmp_path / "more" / "new.wav", 0.6, seed=3)  # ...and adds a line
    stamp = (out / "a.npz").stat().st_mtime_ns
    proc = run_cli(str(lines), str(tmp_path / "more"), *common, "--retry-failed")
    assert proc.returncode == 0, proc.stderr[-2000:]
    summary = json.loads(proc.stdout.splitlines()[-1])
    assert (summary["generated"], summary["failed"]) == (1, 0)
    assert (out / "broken.npz").is_file() and not (out / "new.npz").exists()
    assert (out / "a.npz").stat().st_mtime_ns == stamp
    rows = {r["name"]: r["status"] for r in read_report(out / batch.REPORT_NAME)}
    assert rows == {"a": "done", "broken": "done", "new": "not done"}


def test_batch_lines_get_blinks_gaze_and_head_motion_like_generate(tmp_path, tiny_model):
    """Face life is on by default, as for `generate`; the switches turn it off, and a rerun with
    other face settings redoes the lines."""
    speech_like(tmp_path / "lines" / "a.wav", 2.0, seed=3)
    out = tmp_path / "out"
    common = (str(tmp_path / "lines"), "--out", str(out), "--model", str(tiny_model), "--jobs",
              "1", "--progress", "jsonl", "--fps", "25")
    assert run_cli(*common).returncode == 0
    with np.load(out / "a.npz") as z:
        assert np.abs(z["head"]).max() > 0 and np.abs(z["gaze"]).max() > 0
    proc = run_cli(*common, "--no-blinks", "--no-gaze", "--no-head-motion")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert json.loads(proc.stdout.splitlines()[-1])["generated"] == 1  # redone, not skipped
    assert "Redoing 1 line(s)" in proc.stderr
    with np.load(out / "a.npz") as z:
        assert not np.any(z["head"]) and not np.any(z["gaze"])
