"""The command line: people form, JSON-lines form, error lines and exit codes, the serve loop."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from emote.model_runtime import cli

ROOT = Path(__file__).resolve().parents[1]
EXP_NAMES = [f"exp{i}" for i in range(4)]


def _run(*args: str, stdin: str | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "model_runtime", *args], cwd=ROOT, env=env,
                          input=stdin, capture_output=True, text=True, timeout=timeout)


def _events(stdout: str) -> list[dict]:
    return [json.loads(line) for line in stdout.splitlines()]  # every line must be JSON


@pytest.fixture(scope="module")
def assets(tmp_path_factory):
    import torch

    from emote.model_runtime.checkpoints import build_model, save_checkpoint, tiny_config

    root = tmp_path_factory.mktemp("cli")
    torch.manual_seed(0)
    config = tiny_config(EXP_NAMES, identities=("calm", "lively"))
    save_checkpoint(build_model(config), config, root / "model")
    t = np.arange(int(3.0 * 22050)) / 22050
    sf.write(root / "line.wav", (0.3 * np.sin(2 * np.pi * 180 * t)).astype(np.float32), 22050)
    return root


def _request(assets: Path, **over) -> dict:
    req = {"audio": str(assets / "line.wav"), "audio_start_s": 0.5, "audio_end_s": 2.5,
           "fps": 24.0, "frame_count": 48, "model": str(assets / "model"), "identity": "calm",
           "emotion": {"names": ["sad"], "weights": [[1.0]] * 48}, "intensity": [0.8] * 48}
    req.update(over)
    return req


def test_help_is_quick_and_explains_options():
    res = _run("generate", "--help", timeout=30)
    assert res.returncode == 0
    for option in ("--request", "--out", "--progress", "--emotion", "--intensity", "--fps",
                   "--model", "--style", "--start", "--end"):
        assert option in res.stdout
    res = _run("--help", timeout=30)
    assert res.returncode == 0 and "serve" in res.stdout and "convert-official" in res.stdout
    probe = subprocess.run(
        [sys.executable, "-c", "import sys; from model_runtime import cli; cli.build_parser(); "
         "print('torch' in sys.modules)"], cwd=ROOT, capture_output=True, text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=30)
    assert probe.stdout.strip() == "False"  # torch is imported lazily


def test_people_form_writes_result(assets, tmp_path):
    out = tmp_path / "line.npz"
    res = _run("generate", str(assets / "line.wav"), "--emotion", "happy:0.7,surprised:0.3",
               "--intensity", "0.7", "--fps", "30", "-o", str(out), "--model",
               str(assets / "model"), "--style", "lively", "--start", "0.5", "--end", "2.0")
    assert res.returncode == 0, res.stderr
    assert "Wrote" in res.stdout
    with np.load(out) as d:
        # A FLAME model's result gets the blinks as two extra named channels (on by default).
        assert list(d["exp_names"]) == EXP_NAMES + ["eyeBlink_L", "eyeBlink_R"]
        assert d["exp"].shape == (45, len(EXP_NAMES) + 2) and d["jaw"].shape == (45, 3)
        assert d["head"].shape == (45, 3) and d["gaze"].shape == (45, 2)
        assert float(d["fps"]) == 30.0 and str(d["model_id"]) == "model"


def test_jsonl_form_reports_progress_then_done(assets, tmp_path):
    req_path, out = tmp_path / "req.json", tmp_path / "RESULT.npz"
    req_path.write_text(json.dumps(_request(assets)))
    res = _run("generate", "--request", str(req_path), "--out", str(out), "--progress", "jsonl")
    assert res.returncode == 0, res.stderr
    events = _events(res.stdout)
    assert events[-1] == {"event": "done", "out": str(out)}
    progress = events[:-1]
    assert progress and all(e["event"] == "progress" and set(e) == {"event", "stage", "done",
                                                                    "total"} for e in progress)
    assert {"load_model", "load_audio", "inference", "write"} <= {e["stage"] for e in progress}
    with np.load(out) as d:
        assert d["exp"].shape == (48, len(EXP_NAMES))


def test_jsonl_error_line_exit_code_and_no_file(assets, tmp_path):
    req_path, out = tmp_path / "req.json", tmp_path / "RESULT.npz"
    req_path.write_text(json.dumps(_request(assets, audio=str(tmp_path / "gone.wav"))))
    res = _run("generate", "--request", str(req_path), "--out", str(out), "--progress", "jsonl")
    assert res.returncode == 2
    last = _events(res.stdout)[-1]
    assert last["event"] == "error" and last["kind"] == "missing_file"
    assert "gone.wav" in last["message"]
    assert not out.exists()


@pytest.mark.parametrize("change,kind", [
    ({"frame_count": 99}, "bad_request"),
    ({"identity": "shouty"}, "bad_request"),
    ({"fps": 0}, "bad_request"),
    ({"emotion": {"names": ["bored"], "weights": [[1.0]]}}, "bad_request"),
    ({"audio_start_s": 2.99, "audio_end_s": 3.5}, "too_short"),
])
def test_jsonl_input_errors_in_process(assets, tmp_path, capsys, change, kind):
    req_path, out = tmp_path / "req.json", tmp_path / "RESULT.npz"
    req_path.write_text(json.dumps(_request(assets, **change)))
    code = cli.main(["generate", "--request", str(req_path), "--out", str(out),
                     "--progress", "jsonl"])
    events = _events(capsys.readouterr().out)
    assert code == 2 and events[-1]["event"] == "error" and events[-1]["kind"] == kind
    assert sum(e["event"] in ("done", "error") for e in events) == 1
    assert not out.exists()


def test_request_file_problems_and_usage(tmp_path, capsys):
    bad = tmp_path / "req.json"
    bad.write_text("{not json")
    assert cli.main(["generate", "--request", str(bad), "-o", str(tmp_path / "r.npz"),
                     "--progress", "jsonl"]) == 2
    assert _events(capsys.readouterr().out)[-1]["kind"] == "bad_request"
    assert cli.main(["generate", "-o", str(tmp_path / "r.npz")]) == 2  # neither AUDIO nor request
    assert "error (bad_request)" in capsys.readouterr().err
    code = cli.main(["generate", str(tmp_path / "x.wav"), "--emotion", "gleeful", "-o",
                     str(tmp_path / "r.npz")])
    err = capsys.readouterr().err
    assert code == 2 and "gleeful" in err and "contempt" in err


def test_default_model_missing_people_form(assets, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("EMOTE_DEFAULT_MODEL_DIR", str(tmp_path / "no_model"))
    out = tmp_path / "r.npz"
    assert cli.main(["generate", str(assets / "line.wav"), "-o", str(out)]) == 2
    assert "error (no_default_model)" in capsys.readouterr().err
    assert not out.exists()


def test_unexpected_exception_is_internal_error(assets, tmp_path, capsys, monkeypatch):
    from emote.model_runtime import inference

    def broken(*args, **kwargs):
        raise ZeroDivisionError("boom")

    monkeypatch.setattr(inference, "run_request", broken)
    req_path = tmp_path / "req.json"
    req_path.write_text(json.dumps(_request(assets)))
    code = cli.main(["generate", "--request", str(req_path), "--out", str(tmp_path / "r.npz"),
                     "--progress", "jsonl"])
    captured = capsys.readouterr()
    last = _events(captured.out)[-1]
    assert code == 1 and last["kind"] == "internal" and "report" in last["message"]
    assert "Traceback" in captured.err and "ZeroDivisionError" in captured.err


def test_serve_handles_requests_around_a_bad_one(assets, tmp_path):
    outs = [tmp_path / f"r{i}.npz" for i in range(3)]
    lines = [
        {"id": "a", "request": _request(assets), "out": str(outs[0])},
        {"id": "b", "request": _request(assets, audio=str(tmp_path / "none.wav")),
         "out": str(outs[1])},
        "this is not json",
        {"id": "c", "request": _request(assets, fps=30.0, frame_count=None, emotion=None,
                                        intensity=[0.2]), "out": str(outs[2])},
        {"cmd": "shutdown"},
        {"id": "never", "request": _request(assets), "out": str(tmp_path / "never.npz")},
    ]
    stdin = "\n".join(x if isinstance(x, str) else json.dumps(x) for x in lines) + "\n"
    res = _run("serve", stdin=stdin)
    assert res.returncode == 0, res.stderr
    events = _events(res.stdout)
    assert events[0] == {"event": "ready"}
    finals = [e for e in events if e["event"] in ("done", "error")]
    assert [(e.get("id"), e["event"]) for e in finals] == [
        ("a", "done"), ("b", "error"), (None, "error"), ("c", "done")]
    assert finals[1]["kind"] == "missing_file" and finals[2]["kind"] == "bad_request"
    assert {e["id"] for e in events if e["event"] == "progress"} == {"a", "b", "c"}
    assert outs[0].exists() and not outs[1].exists() and outs[2].exists()
    assert not (tmp_path / "never.npz").exists()  # nothing after shutdown
    with np.load(outs[2]) as d:
        assert d["exp"].shape == (60, len(EXP_NAMES))  # 2.0 s at 30 fps
