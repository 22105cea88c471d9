"""Nothing of the user's is lost (issue 13): results are replaced only on success, a killed run
leaves the old file byte for byte, outputs never overwrite inputs, folders the user owns are never
emptied, and errors about files are said in words."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from emote.model_runtime import cli
from emote.model_runtime.errors import EmoteInputError

ROOT = Path(__file__).resolve().parents[1]
EXP_NAMES = [f"exp{i}" for i in range(4)]
OLD = b"the user's earlier result, which must survive"
TEMP_SUFFIX = ".part"  # model_runtime.safe_write.TEMP_SUFFIX (spelt out: the test predates it)


@pytest.fixture(scope="module")
def assets(tmp_path_factory):
    import torch

    from emote.model_runtime.checkpoints import build_model, save_checkpoint, tiny_config

    root = tmp_path_factory.mktemp("nolost")
    torch.manual_seed(0)
    config = tiny_config(EXP_NAMES)
    save_checkpoint(build_model(config), config, root / "model")
    t = np.arange(int(2.0 * 16000)) / 16000
    sf.write(root / "line.wav", (0.3 * np.sin(2 * np.pi * 180 * t)).astype(np.float32), 16000)
    return root


def _request(assets: Path, **over) -> dict:
    req = {"audio": str(assets / "line.wav"), "fps": 25.0, "model": str(assets / "model"),
           "emotion": {"names": ["happy"], "weights": [[1.0]]}, "intensity": [0.5]}
    req.update(over)
    return req


def _env(**extra) -> dict:
    return {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", **extra}


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(TEMP_SUFFIX))


def _start_held(assets: Path, out: Path, hold: str) -> subprocess.Popen:
    """`generate --request` that waits at `hold` (safe_write.hold_point); returns once there."""
    req = out.parent / "req.json"
    req.write_text(json.dumps(_request(assets)))
    proc = subprocess.Popen(
        [sys.executable, "-m", "model_runtime", "generate", "--request", str(req), "--out",
         str(out), "--progress", "jsonl"], cwd=ROOT, env=_env(EMOTE_TEST_HOLD_AT=hold),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    for line in proc.stderr:  # blocks until the run reaches the stage (no timing involved)
        if line.startswith("EMOTE_TEST_HOLD "):
            return proc
    proc.wait()
    raise AssertionError(f"the run never reached {hold}: exit {proc.returncode}")


@pytest.mark.parametrize("hold", ["inference:RESULT.npz", "replace:RESULT.npz"])
def test_sigkill_keeps_the_old_result_byte_for_byte(assets, tmp_path, hold):
    out = tmp_path / "RESULT.npz"
    out.write_bytes(OLD)
    proc = _start_held(assets, out, hold)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    proc.stdout.close()
    proc.stderr.close()
    assert out.read_bytes() == OLD
    if hold.startswith("replace"):  # killed mid-write: its temporary is there, and only that
        assert len(_leftovers(tmp_path)) == 1
    # The next run (of the same output) removes the dead run's temporary and writes the result.
    res = subprocess.run([sys.executable, "-m", "model_runtime", "generate", "--request",
                          str(tmp_path / "req.json"), "--out", str(out), "--progress", "jsonl"],
                         cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert _leftovers(tmp_path) == []
    with np.load(out) as z:
        assert z["exp"].shape == (50, 4)


def test_output_equal_to_an_input_is_refused_before_anything_is_touched(assets, tmp_path,
                                                                        capsys):
    wav = tmp_path / "take.wav"
    wav.write_bytes((assets / "line.wav").read_bytes())
    before = wav.read_bytes()
    code = cli.main(["generate", str(wav), "--model", str(assets / "model"), "-o", str(wav)])
    err = capsys.readouterr().err
    assert code == 2 and "is the audio file itself" in err, err
    assert wav.read_bytes() == before
    req = tmp_path / "req.json"
    req.write_text(json.dumps(_request(assets)))
    text = req.read_text()
    code = cli.main(["generate", "--request", str(req), "--out", str(req), "--progress", "jsonl"])
    last = json.loads(capsys.readouterr().out.splitlines()[-1])
    assert code == 2 and "request file itself" in last["message"]
    assert req.read_text() == text


def test_bad_request_leaves_an_unrelated_file_alone(assets, tmp_path, capsys):
    notes = tmp_path / "notes.txt"
    notes.write_text("my notes")
    code = cli.main(["generate", str(assets / "line.wav"), "--model", str(assets / "model"),
                     "--style", "nobody", "-o", str(notes)])
    assert code == 2
    assert notes.read_text() == "my notes" and _leftovers(tmp_path) == []


def test_result_gets_umask_permissions(assets, tmp_path):
    from emote.model_runtime.inference import run_request

    old = os.umask(0o022)
    try:
        run_request(_request(assets), tmp_path / "r.npz")
    finally:
        os.umask(old)
    assert (tmp_path / "r.npz").stat().st_mode & 0o777 == 0o644


def test_unwritable_output_folder_is_said_in_words(assets, tmp_path, capsys, monkeypatch):
    # Tests may run as root, for whom permissions do not apply: make creating the file fail
    # the way a read-only folder does.
    real_open = open

    def refusing_open(path, *args, **kwargs):
        if str(path).startswith(str(tmp_path / "locked")):
            raise PermissionError(13, "Permission denied", str(path))
        return real_open(path, *args, **kwargs)

    (tmp_path / "locked").mkdir()
    monkeypatch.setattr("builtins.open", refusing_open)
    out = tmp_path / "locked" / "r.npz"
    code = cli.main(["generate", str(assets / "line.wav"), "--model", str(assets / "model"),
                     "-o", str(out), "--progress", "jsonl"])
    last = json.loads(capsys.readouterr().out.splitlines()[-1])
    assert code == 2 and last["kind"] == "unwritable_output", last
    assert "is not writable (Permission denied)" in last["message"]
    assert "please report" not in last["message"]


def test_permission_denied_audio_is_said_in_words(tmp_path, monkeypatch):
    from emote.model_runtime.audio import load_audio

    wav = tmp_path / "locked.wav"
    sf.write(wav, np.zeros(16000, dtype=np.float32), 16000)
    real_open = open

    def refusing_open(path, *args, **kwargs):
        if str(path) == str(wav):
            raise PermissionError(13, "Permission denied", str(path))
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr("builtins.open", refusing_open)
    with pytest.raises(EmoteInputError) as info:
        load_audio(wav)
    assert "permission denied" in info.value.message
    assert "damaged" not in info.value.message


def test_wav_cut_short_warns_with_both_lengths(assets, tmp_path, capsys):
    from emote.model_runtime.audio import load_audio

    whole = (assets / "line.wav").read_bytes()  # 2 s
    cut = tmp_path / "cut.wav"
    cut.write_bytes(whole[:44 + 16000 * 2])  # header + 1 s of 16-bit mono
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        audio = load_audio(cut)
    assert audio.shape[0] == 16000
    texts = [str(w.message) for w in caught if "cut short" in str(w.message)]
    assert len(texts) == 1 and "2.000 s" in texts[0] and "1.000 s" in texts[0], texts
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        load_audio(assets / "line.wav")
    assert not [w for w in caught if "cut short" in str(w.message)]
    # On the command line it is a warning event, and the run still succeeds.
    code = cli.main(["generate", str(cut), "--model", str(assets / "model"), "-o",
                     str(tmp_path / "r.npz"), "--progress", "jsonl"])
    events = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert code == 0 and events[-1]["event"] == "done"
    assert [e["message"] for e in events if e["event"] == "warning"] == texts


def test_request_file_with_utf8_bom_is_read(assets, tmp_path, capsys):
    req = tmp_path / "req.json"
    req.write_bytes(b"\xef\xbb\xbf" + json.dumps(_request(assets)).encode())
    code = cli.main(["generate", "--request", str(req), "--out", str(tmp_path / "r.npz"),
                     "--progress", "jsonl"])
    assert code == 0, capsys.readouterr().out
    assert (tmp_path / "r.npz").is_file()


def test_save_checkpoint_never_empties_a_folder(tmp_path):
    import torch

    from emote.model_runtime.checkpoints import build_model, load_checkpoint, save_checkpoint, tiny_config

    config = tiny_config(EXP_NAMES)
    torch.manual_seed(1)
    model = build_model(config)
    user = tmp_path / "downloads"
    user.mkdir()
    (user / "last.ckpt").write_bytes(b"licensed weights")
    (user / "cfg.yaml").write_text("model: {}")
    with pytest.raises(EmoteInputError) as info:
        save_checkpoint(model, config, user)
    assert info.value.kind == "folder_not_ours" and str(user) in info.value.message
    assert "last.ckpt" in info.value.message
    assert sorted(p.name for p in user.iterdir()) == ["cfg.yaml", "last.ckpt"]
    assert (user / "last.ckpt").read_bytes() == b"licensed weights"
    # One of our folders: only our two files are replaced, the user's notes stay.
    ours = save_checkpoint(model, config, tmp_path / "ckpt")
    (ours / "notes.txt").write_text("keep me")
    config["provenance"]["note"] = "second save"
    save_checkpoint(model, config, ours)
    assert (ours / "notes.txt").read_text() == "keep me"
    assert load_checkpoint(ours)[1]["provenance"]["note"] == "second save"
    assert sorted(p.name for p in ours.iterdir()) == ["config.json", "model.safetensors",
                                                      "notes.txt"]


def test_a_write_that_fails_midway_keeps_the_old_file_and_live_temps_are_left_alone(tmp_path):
    from emote.model_runtime import safe_write

    target = tmp_path / "report.csv"
    target.write_text("old rows")
    with pytest.raises(RuntimeError):
        with safe_write.replacing(target, "w", encoding="utf-8") as fh:
            fh.write("half of the new rows")
            raise RuntimeError("disk went away")
    assert target.read_text() == "old rows" and _leftovers(tmp_path) == []
    # Another running process's temporary (here: our parent's) is not stale; a dead one's is.
    live = tmp_path / f".report.csv.{os.getppid()}-abcd{TEMP_SUFFIX}"
    live.write_text("someone is writing this")
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True).stdout.strip()
    stale = tmp_path / f".report.csv.{dead}-abcd{TEMP_SUFFIX}"
    stale.write_text("left by a killed run")
    safe_write.write_text(target, "new rows")
    assert target.read_text() == "new rows"
    assert _leftovers(tmp_path) == [live.name]
    assert target.stat().st_mode & 0o777 == safe_write.file_mode()
