"""sky_corpus: a clip becomes a training record of the corpus format (or is dropped with its
reason), every Steel Sky record is training speech, and a fine-tune that asks for the game's
voices without the game stops with the fix."""

import json
import types
from pathlib import Path

import numpy as np
import pytest

from model_runtime.training import sky_corpus, speaker_split


class _Aligner:
    """Stands in for pocketsphinx: aligns every word of the text evenly over the clip."""

    def __init__(self, fail: bool = False):
        self.fail = fail

    def words(self, text):
        return [w.strip(".,!?'").lower() for w in text.split()]

    def align(self, audio, text):
        if self.fail:
            return None
        words, total = self.words(text), len(audio) / 16000
        step = total / len(words)
        phones = []
        for i, _w in enumerate(words):
            s = i * step
            phones += [["M", round(s, 3), round(s + step / 3, 3)],
                       ["AA", round(s + step / 3, 3), round(s + 2 * step / 3, 3)],
                       ["T", round(s + 2 * step / 3, 3), round(s + step, 3)]]
        return {"phones": phones,
                "words": [[w, i * step, (i + 1) * step] for i, w in enumerate(words)]}


def _clip(seconds=1.2, text="Know anyone called Overmann?"):
    t = np.arange(int(seconds * 16000)) / 16000
    audio = (0.3 * np.sin(2 * np.pi * 140 * t) * (0.6 + 0.4 * np.sin(2 * np.pi * 3 * t)))
    return types.SimpleNamespace(audio=audio.astype(np.float32), text=text, text_number=8268,
                                 group="s2", block="s2b02", seconds=seconds)


def test_a_clip_becomes_a_training_record(tmp_path):
    dec = {}
    r = sky_corpus.clip_record(_Aligner(), tmp_path, _clip(), dec)
    assert r is not None and not dec
    assert (tmp_path / r["wav"]).is_file()
    assert r["id"] == "sky-8268" and r["speaker"] == r["voice"] == "sky:s2"
    assert r["source"] == "game" and r["game"] == "sky" and r["licence"]
    assert [w[0] for w in r["words"]] == ["know", "anyone", "called", "overmann"]
    # Steel Sky's cast is no one held out: its records always train
    assert speaker_split.split_of(r) == "train"
    json.dumps(r)  # one manifest line


def test_a_failed_or_implausible_alignment_is_dropped_with_its_reason(tmp_path):
    dec = {}
    assert sky_corpus.clip_record(_Aligner(fail=True), tmp_path, _clip(), dec) is None
    assert dec["reason"] == "forced alignment failed"
    dec = {}  # four words in 6 s: 2 phones a second, under the plausible rate
    assert sky_corpus.clip_record(_Aligner(), tmp_path, _clip(seconds=6.0), dec) is None
    assert "speech rate" in dec["reason"]
    assert not list(tmp_path.rglob("*.wav"))  # a dropped clip leaves no audio behind


def test_a_fine_tune_with_sky_voices_needs_the_game(tmp_path, monkeypatch):
    from model_runtime.training import queen_data, sky_data, train_default
    from model_runtime.training.plan import make_plan, parse_args

    game = tmp_path / "queen.1c"
    game.write_bytes(b"")
    monkeypatch.setattr(queen_data, "QUEEN_1C", game)
    monkeypatch.setattr(sky_data, "SKY_DIR", tmp_path / "no_sky")
    data = tmp_path / "data"
    for folder, marker in (("asterisk", ".stage1_done"), ("queen_corpus", ".done")):
        (data / folder).mkdir(parents=True)
        (data / folder / marker).touch()
    plan = make_plan(parse_args(["--data", str(data), "--fine-tune", "1", "--sky-corpus", "on",
                                 "--init-from", str(tmp_path)]))
    assert plan.recipe.use_sky_corpus
    with pytest.raises(SystemExit, match="apt-get install beneath-a-steel-sky"):
        train_default.build_corpora(plan)
    off = make_plan(parse_args(["--data", str(data), "--fine-tune", "1", "--sky-corpus", "off",
                                "--init-from", str(tmp_path)]))
    train_default.build_corpora(off)  # nothing to build, and no Steel Sky asked for
    assert Path(data / "sky_corpus") not in off.extra_corpora


@pytest.mark.parametrize("bad", ["2/2", "3/2", "1", "a/b"])
def test_a_bad_shard_names_the_fix(bad, capsys):
    with pytest.raises(SystemExit):
        sky_corpus.main(["--out", "/nonexistent/never", "--shard", bad])
    assert "give K/N with 0 <= K < N" in capsys.readouterr().err


def test_shards_split_the_clip_list():
    import argparse

    from model_runtime.training.game_corpus import parse_shard

    assert parse_shard(argparse.ArgumentParser(), "1/2") == (1, 2)
