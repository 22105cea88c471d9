"""Smoke training of every stage on a tiny synthetic corpus: each loss goes down, the command
ships a loadable checkpoint with its model card, and a rerun resumes instead of retraining.

The tiny corpus is synthetic (harmonic 'vowels', noise 'consonants', silent bilabial closures with
their ARPAbet timings), so the test needs no TTS engine; the targets come from the real teacher.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf
import torch

from emote.model_runtime.heads.arkit_channels import OPEN_HEAD_CHANNELS
from emote.model_runtime.heads.head_model import HeadModel, save_head
from emote.model_runtime.training import teacher
from emote.model_runtime.training.feature_cache import Utterance, build_cache, load_cache
from emote.model_runtime.training.phones import ARPABET, BILABIALS, OPEN_VOWELS

SR = 16000


def stand_in_head() -> HeadModel:
    """A small grid 'face' with 40 smooth expression bumps and a jaw (when no open head exists)."""
    xs, ys = np.meshgrid(np.linspace(-0.05, 0.05, 21), np.linspace(-0.09, 0.03, 25))
    v = np.stack([xs.ravel(), ys.ravel(), 0.1 - 5 * xs.ravel() ** 2], 1).astype(np.float32)
    n = len(v)
    faces = []
    for r in range(24):
        for c in range(20):
            a = r * 21 + c
            faces += [(a, a + 1, a + 21), (a + 1, a + 22, a + 21)]
    rng = np.random.default_rng(0)
    dirs = np.zeros((n, 3, 40), np.float32)
    for e in range(40):
        centre = v[rng.integers(n)]
        w = np.exp(-np.sum((v - centre) ** 2, 1) / (2 * 0.015 ** 2))
        dirs[:, :, e] = w[:, None] * rng.normal(0, 0.004, 3)
    lw = np.zeros((n, 2), np.float32)
    lower = np.clip((-0.045 - v[:, 1]) / 0.01 + 0.5, 0, 1)
    lw[:, 1], lw[:, 0] = lower, 1 - lower
    def near(x, y):
        return int(np.argmin(np.sum((v[:, :2] - [x, y]) ** 2, 1)))
    return HeadModel(
        head_id="stand_in", v_template=v, faces=np.array(faces, np.int32),
        exp_names=list(OPEN_HEAD_CHANNELS), exp_dirs=dirs, joint_names=["root", "jaw"],
        joints=np.array([[0, 0, 0], [0, -0.03, 0.05]], np.float32), parents=np.array([-1, 0]),
        lbs_weights=lw, landmark_names=["lip_upper_inner", "lip_lower_inner",
                                        "mouth_corner_left", "mouth_corner_right"],
        landmark_vertices=np.array([near(0, -0.04), near(0, -0.05), near(0.025, -0.045),
                                    near(-0.025, -0.045)]))


def pick_head() -> HeadModel:
    """The real open head when its builder exists, else the stand-in grid face."""
    try:
        from emote.model_runtime.heads.head_model import load_head
        from emote.model_runtime.heads.open_head import default_head_path
        return load_head(default_head_path())
    except ImportError:
        return stand_in_head()


def synth_utterance(rng: np.random.Generator, seconds: float) -> tuple[np.ndarray, list]:
    """Audio with a distinct sound per phone class and its [[phone, start, end], ...] timing."""
    phones, t = [["SIL", 0.0, 0.15]], 0.15
    pool = [p for p in ARPABET]
    while t < seconds - 0.25:
        p = str(rng.choice(["M", "B", "P", "AA", "IY", "UW", "AE"] + pool))
        d = float(rng.uniform(0.06, 0.16))
        phones.append([p, round(t, 3), round(t + d, 3)])
        t += d
    phones.append(["SIL", round(t, 3), round(seconds, 3)])
    audio = np.zeros(int(seconds * SR), np.float32)
    for p, s, e in phones:
        a, b = int(s * SR), min(int(e * SR), len(audio))
        tt = np.arange(b - a) / SR
        k = ARPABET.index(p) if p in ARPABET else -1
        if p == "SIL" or p in BILABIALS:
            seg = 0.002 * rng.normal(size=b - a)
        elif p in OPEN_VOWELS:
            f0 = 110 + 3 * k
            seg = sum(np.sin(2 * np.pi * f0 * h * tt) / h for h in range(1, 8))
            seg = seg * (1 + 0.5 * np.sin(2 * np.pi * (300 + 40 * k) * tt))
        else:
            seg = rng.normal(size=b - a) * np.sin(2 * np.pi * (1500 + 150 * k) * tt)
        audio[a:b] = 0.2 * seg
    return audio, phones


def write_corpus(folder, n_train=10, n_val=2, seed=0):
    rng = np.random.default_rng(seed)
    (folder / "wav").mkdir(parents=True)
    rows = []
    for i in range(n_train + n_val):
        audio, phones = synth_utterance(rng, float(rng.uniform(2.0, 3.2)))
        sf.write(folder / "wav" / f"u{i}.wav", audio, SR)
        rows.append({"id": f"u{i}", "wav": f"wav/u{i}.wav", "phones": phones, "voice": "synth",
                     "engine": "synthetic", "split": "train" if i < n_train else "val",
                     "source": "tts"})
    with open(folder / "manifest.jsonl", "w") as f:
        f.writelines(json.dumps(r) + "\n" for r in rows)
    return rows


SMALL_ARCH = {
    "audio_encoder": "logmel", "output_dim": 43, "cond_dim": 8 + 3 + len(teacher.STYLES),
    "n_mels": 32, "logmel_channels": 32, "logmel_dilations": [1, 2], "logmel_post_layers": 1,
    "seq_dim": 32, "style_dim": 32, "n_heads": 4, "ff_dim": 64, "dropout": 0.0, "period": 30,
    "decoder_layers": 1, "latent_dim": 32, "flint_quant": 3, "flint_heads": 4, "flint_ff": 64,
    "flint_layers": 1,
}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """A tiny synthetic corpus, its cache (small log-mel encoder, real teacher) and the head."""
    from emote.model_runtime.networks.audio_encoders import LogMelEncoder

    torch.set_num_threads(1)  # the machine is shared; one thread is also the fastest here
    root = tmp_path_factory.mktemp("corpus")
    rows = write_corpus(root)
    utts = [Utterance(r["id"], sf.read(root / r["wav"], dtype="float32")[0], r["phones"],
                      r["split"], r["source"], r["voice"]) for r in rows]
    enc = LogMelEncoder(SMALL_ARCH)

    def feature_fn(a):
        return enc.features(torch.from_numpy(a)[None])[0].numpy()

    path = build_cache(utts, root / "cache.npz", feature_fn,
                       lambda *a: teacher.teacher_animation(*a),
                       teacher.random_emotion_curve, list(teacher.STYLES), variants=3,
                       progress=None)
    return {"root": root, "cache": load_cache(path), "head": pick_head(), "enc": enc,
            "utts": utts}


def _went_down(result, key):
    first, last = result.mean_of(key, True, 1), result.mean_of(key, False, 3)
    assert np.isfinite(first) and np.isfinite(last)
    assert last < first, f"{result.name}: {key} did not go down ({first:.4g} -> {last:.4g})"


def test_cache_windows_match_encoder_on_the_audio_window(tiny):
    from emote.model_runtime.training.dataset import WindowSampler

    c = tiny["cache"]
    assert c.ratio == 2 and c.variants == 3
    s = WindowSampler(c, c.indices("train"), window=16, seed=0)
    n, start = int(c.indices("train")[0]), 20
    w = s.window(n, 1, start)
    audio = tiny["utts"][n].audio
    from emote.model_runtime.training.feature_cache import normalise_audio
    full = tiny["enc"].features(torch.from_numpy(normalise_audio(audio))[None])[0].numpy()
    np.testing.assert_allclose(w["feat"], full[2 * start: 2 * start + 33], atol=0.06)
    assert w["cond"].shape == (16, 8 + 3 + len(teacher.STYLES))
    np.testing.assert_allclose(w["cond"][:, :8].sum(1), 1.0, atol=1e-2)
    o = int(c.frame_offsets[n]) + start
    np.testing.assert_array_equal(w["exp"], c.exp[1, o:o + 16].astype(np.float32))
    # a short utterance is padded and masked
    w2 = s.window(n, 0, int(c.frames[n]) - 5)
    assert w2["mask"].sum() == 5 and w2["mask"][:5].all()


def test_exchange_permutes_emotion_and_intensity_only():
    from emote.model_runtime.training.stage2 import derangement, exchange_conditions

    for n in (2, 3, 7, 16):
        perm = derangement(n, torch.Generator().manual_seed(n))
        assert sorted(perm.tolist()) == list(range(n))
        assert not any(perm[i] == i for i in range(n))
    cond = torch.rand(5, 4, 15)
    perm = derangement(5, torch.Generator().manual_seed(0))
    out = exchange_conditions(cond, perm)
    assert torch.equal(out[..., :11], cond[perm][..., :11])
    assert torch.equal(out[..., 11:], cond[..., 11:])


def test_closure_scores_follow_metrics_definitions():
    from emote.model_runtime.training.validation import closure_scores

    gap = np.full(50, 10.0)
    gap[10:14] = 0.5  # closed during the first M only
    segs = [("AA", 0.0, 0.2), ("M", 0.4, 0.56), ("B", 1.0, 1.12), ("IY", 1.5, 1.6),
            ("P", 1.8, 1.82)]  # the P is too short to count
    closed, n_bil, false, n_open = closure_scores(gap, segs)
    assert (closed, n_bil, false, n_open) == (1, 2, 0, 2)


def test_every_stage_loss_goes_down(tiny, tmp_path):
    """A few steps of FLINT, stage 1, lip reader, emotion classifier and stage 2 each."""
    from emote.model_runtime.networks.flint import FlintVAE
    from emote.model_runtime.networks.talking_head import TalkingHead
    from emote.model_runtime.training.dataset import WindowSampler
    from emote.model_runtime.training.emotion_classifier import (EmotionClassifier,
                                                           train_emotion_classifier)
    from emote.model_runtime.training.flint_training import train_flint
    from emote.model_runtime.training.head_views import HeadViews
    from emote.model_runtime.training.lip_reader import LipReader, train_lip_reader
    from emote.model_runtime.training.stage1 import train_stage1
    from emote.model_runtime.training.stage2 import train_stage2

    c = tiny["cache"]
    tr, va = c.indices("train"), c.indices("val")
    views = HeadViews(tiny["head"], face_max=300, mouth_count=32, emotion_count=100)
    torch.manual_seed(0)
    kw = {"log_every": 2, "log": lambda s: None, "device": "cpu"}

    vae = FlintVAE(SMALL_ARCH)
    r = train_flint(vae, views, WindowSampler(c, tr, 32, 1), WindowSampler(c, va, 32, 2),
                    tmp_path, 16, batch=6, lr=3e-3, **kw)
    _went_down(r, "vertex_mm2")

    model = TalkingHead(SMALL_ARCH, zero_init=True)
    model.flint.load_state_dict(vae.motion_decoder.state_dict())
    flint_before = {k: v.clone() for k, v in model.flint.state_dict().items()}
    r = train_stage1(model, views, WindowSampler(c, tr, 64, 3), WindowSampler(c, va, 64, 4),
                     tmp_path, 16, batch=4, lr=3e-3, width_weight=1.0, **kw)
    _went_down(r, "vertex_mm2")
    assert 0.0 <= r.history[-1][1]["val_closure_recall"] <= 1.0

    reader = LipReader(views.mouth_dim, hidden=48)
    r = train_lip_reader(reader, views, WindowSampler(c, tr, 64, 5), WindowSampler(c, va, 64, 6),
                         tmp_path, 16, batch=6, lr=3e-3, **kw)
    _went_down(r, "ce")

    clf = EmotionClassifier(views.emotion_dim, hidden=48)
    r = train_emotion_classifier(clf, views, WindowSampler(c, tr, 64, 7),
                                 WindowSampler(c, va, 64, 8), tmp_path, 16, batch=6, lr=3e-3, **kw)
    _went_down(r, "ce")

    # weights of this tiny check (the recipe's own weights lean on the gap and width terms)
    weights = {"vertex": 1.0, "lip": 2.0, "emotion": 1.0, "gap": 0.5, "width": 0.0, "closed": 4.0}
    r = train_stage2(model, views, reader, clf, WindowSampler(c, tr, 64, 9),
                     WindowSampler(c, va, 64, 10), tmp_path, 16, batch=4, lr=3e-3,
                     weights=weights, **kw)
    total = [h[1]["vertex_mm2"] + weights["lip"] * h[1]["lip"] + h[1]["emotion"]
             for h in r.history if "lip" in h[1]]
    # first and last three log points, so one noisy batch at either end decides nothing
    assert np.mean(total[-3:]) < np.mean(total[:3]), total
    # the FLINT decoder stayed frozen (weights and BatchNorm statistics) through both stages
    for k, v in model.flint.state_dict().items():
        assert torch.equal(v, flint_before[k]), k
    assert not any(p.requires_grad for p in reader.parameters())


def test_closure_weight_scales_the_error_on_sealed_frames_only():
    from emote.model_runtime.training.losses import lip_gap_loss

    ref = torch.tensor([[0.0, 0.0, 10.0, 10.0]])  # two sealed frames, two open ones
    sealed_miss = torch.tensor([[2.0, 2.0, 10.0, 10.0]])
    open_miss = torch.tensor([[0.0, 0.0, 12.0, 12.0]])
    for w in (0.0, 4.0, 16.0):
        assert lip_gap_loss(sealed_miss, ref, closed_weight=w).item() == pytest.approx(
            (1 + w) * 1.0)
        assert lip_gap_loss(open_miss, ref, closed_weight=w).item() == pytest.approx(1.0)


def test_stage2_passes_the_closure_weight_to_the_gap_term(tiny):
    from emote.model_runtime.networks.talking_head import TalkingHead
    from emote.model_runtime.training.dataset import WindowSampler
    from emote.model_runtime.training.emotion_classifier import EmotionClassifier
    from emote.model_runtime.training.head_views import HeadViews
    from emote.model_runtime.training.lip_reader import LipReader
    from emote.model_runtime.training.stage2 import DEFAULT_WEIGHTS, stage2_losses

    c = tiny["cache"]
    views = HeadViews(tiny["head"], face_max=300, mouth_count=32, emotion_count=100)
    torch.manual_seed(0)
    model = TalkingHead(SMALL_ARCH).eval()
    reader = LipReader(views.mouth_dim, hidden=48).eval()
    clf = EmotionClassifier(views.emotion_dim, hidden=48).eval()
    b = WindowSampler(c, c.indices("train"), 64, 3).sample(4)
    assert (views.lip_gap_mm(views(b["exp"], b["jaw"])) < 1.0).any()  # the batch has seals
    perm = torch.tensor([1, 2, 3, 0])
    with torch.no_grad():
        gaps = [stage2_losses(model, views, reader, clf, b, perm,
                              {**DEFAULT_WEIGHTS, "closed": w})[1]["gap_mm"] for w in (0.0, 16.0)]
    assert gaps[1] > gaps[0]


def test_command_ships_checkpoint_and_resumes(tiny, tmp_path, capsys):
    from emote.model_runtime.checkpoints import load_checkpoint
    from emote.model_runtime.training.train_default import main

    head_path = tmp_path / "head.npz"
    save_head(tiny["head"], head_path)
    work, out = tmp_path / "run", tmp_path / "model"
    args = ["--corpus", str(tiny["root"]), "--work", str(work), "--out", str(out), "--device",
            "cpu", "--steps-scale", "0.002", "--variants", "2", "--head", str(head_path),
            "--log-every", "1", "--minutes-budget", "30", "--smoke", "--threads", "1",
            "--steps", "stage2=1500", "--width-weight", "1.5", "--closure-weight", "16"]
    assert main(args) == 0
    model, config = load_checkpoint(out)
    p = config["provenance"]
    assert set(p["steps"]) == {"flint", "stage1", "lip_reader", "emotion_classifier", "stage2"}
    # --steps sets one stage's CPU step count; the scale applies to it like the rest
    assert p["steps"]["stage2"] == 3 and p["steps"]["flint"] == 3
    assert p["loss_weights_stage2"]["width"] == 1.5 and p["width_weight_stage1"] == 0.0
    assert p["loss_weights_stage2"]["closed"] == 16.0
    assert p["trained_on"]["utterances"] == 12 and "val_closure_recall" in p["metrics"]["stage2"]
    # the record holds the recipe this run resolved: the recipe with the command's options
    from emote.model_runtime.training.plan import parse_args, resolve_recipe

    r = p["resolved_recipe"]
    assert r == json.loads(json.dumps(resolve_recipe(parse_args(args)).as_dict()))
    assert r["stages"]["stage2"]["cpu_steps"] == 1500 and r["stages"]["stage1"]["batch"] == 4
    assert r["stage2_weights"]["width"] == 1.5 and r["minutes_budget"] == 30.0
    assert r["teacher_variants"] == 2 and r["corpus"] == [] and p["planned_steps"] == p["steps"]
    card = (out / "MODEL_CARD.md").read_text()
    assert card.count("synthetic") >= 1
    # the card's recipe section is rendered from that record
    assert "| stage2 | 3 (3) |" in card and "mouth width 1.5" in card and "counted 17x" in card
    assert "Budget 30 min" in card and "2 teacher variants" in card
    assert (work / "stage1_model" / "config.json").is_file()
    assert sum(t.numel() * t.element_size() for t in model.state_dict().values()) < 25e6
    first = capsys.readouterr().out
    assert "[stage2] step" in first
    # a rerun with --resume loads every finished stage instead of training again
    assert main(args + ["--resume"]) == 0
    again = capsys.readouterr().out
    assert again.count("already finished") == 5 and "[stage2] step" not in again
    # without --resume an existing run is refused
    with pytest.raises(SystemExit):
        main(args)


def test_fine_tune_phase_trains_from_the_base_on_game_speech(tiny, tmp_path, monkeypatch):
    """`--data DATA --fine-tune 1` starts from DATA/base_model, trains on DATA/asterisk plus the
    game's training speakers (the corpora already built), and records its phase."""
    import shutil

    from emote.model_runtime.checkpoints import load_checkpoint
    from emote.model_runtime.training import queen_data
    from emote.model_runtime.training.recipe import SHIPPED
    from emote.model_runtime.training.train_default import main

    head_path = tmp_path / "head.npz"
    save_head(tiny["head"], head_path)
    data = tmp_path / "data"
    common = ["--device", "cpu", "--steps-scale", "0.002", "--variants", "2", "--head",
              str(head_path), "--log-every", "1", "--minutes-budget", "30", "--smoke",
              "--threads", "1"]
    assert main(["--corpus", str(tiny["root"]), "--work", str(tmp_path / "base_run"),
                 "--out", str(data / "base_model"), *common]) == 0
    # the corpora a --data run would have built: the Asterisk prompts and the game's speakers
    rows = [json.loads(line) for line in (tiny["root"] / "manifest.jsonl").read_text().splitlines()]
    for name, marker, extra in (("asterisk", ".stage1_done", {"source": "asterisk"}),
                                ("queen_corpus", ".done", {"source": "game",
                                                           "speaker": "queen:joe"})):
        folder = data / name
        shutil.copytree(tiny["root"] / "wav", folder / "wav")
        with open(folder / "manifest.jsonl", "w") as f:
            f.writelines(json.dumps({**r, **extra, "id": f"{name}-{r['id']}"}) + "\n"
                         for r in rows)
        (folder / marker).touch()
    game = tmp_path / "queen.1c"
    game.write_bytes(b"")
    monkeypatch.setattr(queen_data, "QUEEN_1C", game)
    out = data / "fine_tune_1_model"
    assert main(["--data", str(data), "--fine-tune", "1", "--out", str(out), *common,
                 "--speaker-balance", "0.5", "--feature-augment", "on",
                 "--speaker-adversary", "0.3", "--upper-face-weight", "2",
                 "--flint-lr-scale", "0.5", "--encoder-lr-scale", "0"]) == 0
    p = load_checkpoint(out)[1]["provenance"]
    r = p["resolved_recipe"]
    assert (r["speaker_balance"], r["feature_augment"], r["speaker_adversary"],
            r["upper_face"], r["flint_lr_scale"], r["encoder_lr_scale"]) == (0.5, True, 0.3, 2.0,
                                                                          0.5, 0.0)
    # the frozen audio encoder kept its weights while the decoder learned
    base_sd, tuned_sd = (load_checkpoint(d)[0].state_dict() for d in (data / "base_model", out))
    enc = [k for k in base_sd if k.startswith("audio_encoder.")]
    dec = [k for k in base_sd if k.startswith("decoder_layers.")]
    assert enc and all(torch.equal(base_sd[k], tuned_sd[k]) for k in enc)
    assert any(not torch.equal(base_sd[k], tuned_sd[k]) for k in dec)
    # the FLINT decoder trained too (its BatchNorm statistics did not)
    before = load_checkpoint(data / "base_model")[0].flint.state_dict()
    after = load_checkpoint(out)[0].flint.state_dict()
    weights = [k for k in before if k.endswith("weight") and before[k].dim() > 1]
    assert weights and any(not torch.equal(before[k], after[k]) for k in weights)
    assert all(torch.equal(before[k], after[k]) for k in before if "running_" in k)
    state = torch.load(data / "fine_tune_1_run" / "stage2" / "state.pt", weights_only=True)
    assert "adversary" in state["modules"]  # the adversary trained beside stage 2 (and resumes)
    assert not any(k.startswith("adversary") for k in load_checkpoint(out)[0].state_dict())
    assert p["init_from"]["folder"] == str(data / "base_model")
    assert set(p["steps"]) == {"lip_reader", "emotion_classifier", "stage2"}
    assert p["loss_weights_stage2"]["closed"] == SHIPPED.fine_tunes[0].closed
    assert p["trained_on"]["sources"] == {"asterisk": 12, "game": 12 * 3}  # + 2 copies each
    assert (data / "fine_tune_1_run" / "stage2" / "state.pt").is_file()


@pytest.mark.parametrize("bad", ["stage3=10", "stage2=many", "stage2"])
def test_steps_option_names_the_problem(bad, tmp_path):
    from emote.model_runtime.training.train_default import main

    with pytest.raises(SystemExit, match="STAGE=N"):
        main(["--corpus", str(tmp_path), "--work", str(tmp_path / "w"), "--steps", bad])
