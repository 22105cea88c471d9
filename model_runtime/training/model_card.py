"""MODEL_CARD.md of a trained checkpoint, written from its config's provenance.

The card is (re)written after every save, atomically like the checkpoint's own files.
"""

from __future__ import annotations

import json
from pathlib import Path

# Licences of the speech sources the corpus builder can use (see each Debian package's copyright).
SOURCE_LICENCES = {
    "flite": "CMU Flite voices (awb, rms, slt, kal16): CMU ARCTIC / Flite licence, BSD-style, free "
             "use with attribution",
    "festival": "Festival voices (kal_diphone, cmu_us_slt HTS): Festival / CMU ARCTIC / HTS "
                "licences, BSD-style",
    "espeak-ng": "eSpeak NG voices: GPL-3.0-or-later",
    "espeak": "eSpeak NG voices: GPL-3.0-or-later",
    "rhvoice": "RHVoice voices: licence differs per voice (check it before shipping)",
    "synthetic": "synthetic test signals (no licence needed)",
    "asterisk": "Asterisk core sound prompts (en_US, Allison Smith): CC-BY-SA-3.0",
    # /usr/share/doc/flight-of-the-amazon-queen/copyright (Debian 1.0.0-9)
    "game": "Flight of the Amazon Queen speech (Debian flight-of-the-amazon-queen 1.0.0-9): game "
            "content (C) John Passfield and Steven Stamatiadis, Flight-of-the-Amazon-Queen-"
            "License: free redistribution with the readme and notices intact, modification "
            "allowed when marked as a modified version, no fee for the game itself",
}
def _table(d: dict) -> str:
    return ", ".join(f"{k or '?'}: {v}" for k, v in sorted(d.items())) or "n/a"


def _voice_groups(voices: dict) -> dict:
    """Voice counts grouped by base voice (eSpeak variants '+x' folded into their language)."""
    out: dict = {}
    for name, n in voices.items():
        key = name.split("+", 1)[0] + (" (variants)" if "+" in name else "")
        out[key] = out.get(key, 0) + n
    return out


def _checks(checks: dict | None) -> str:
    """Extra measured figures recorded in provenance['checks'] (e.g. through inference)."""
    if not checks:
        return ""
    return "\nFurther checks:\n" + "\n".join(f"- {k}: {json.dumps(v)}" for k, v in checks.items()) + "\n"


def _corpus_line(r: dict) -> str:
    """The recipe's corpus parts, or a note that the run was given its corpus."""
    parts = [f"{c['hours']:g} h of TTS speech (seed {c['seed']})"
             + (" with the Asterisk prompts" if c["asterisk"] else "") for c in r["corpus"]]
    if r["use_game_corpus"]:
        parts.append("the game's real speakers (held-out characters only validate)")
    if r.get("use_sky_corpus"):
        parts.append("Beneath a Steel Sky's voices (all training)")
    text = "; ".join(parts) if parts else "the corpus folders given to the command (above)"
    return f"{text}; game training clips {r['game_copies']}x augmented"


def _recipe_section(p: dict) -> str:
    """The Recipe section from the record's resolved recipe (`resolved_recipe`), or from the
    separate fields older checkpoints recorded."""
    r = p.get("resolved_recipe")
    if r is None:
        return f"""{p.get('recipe', '')}.
- Steps: {json.dumps(p.get('steps', {}))}; minutes: {json.dumps(p.get('minutes', {}))}
- Device: {p.get('device', '?')} (steps scale {p.get('steps_scale', '?')}),
  torch {p.get('torch', '?')}
- Batch sizes {json.dumps(p.get('batch', {}))}, learning rates {json.dumps(p.get('lr', {}))},
  windows of {p.get('window_frames', '?')} frames, {p.get('cache_variants', '?')} teacher
  variants per utterance.
- Stage-2 loss weights: {json.dumps(p.get('loss_weights_stage2', {}))} (vertex loss in mm^2,
  perceptual losses as 1 - cosine); FLINT KL weight {p.get('flint_kl_weight', '?')}."""
    steps, planned, minutes = p.get("steps", {}), p.get("planned_steps", {}), p.get("minutes", {})
    rows = [f"| {k} | {steps.get(k, '-')} ({planned.get(k, '?')}"
            f"{', stops at ' + str(s['stop_at']) if s.get('stop_at') else ''}) | {minutes.get(k, '-')} | "
            f"{s['batch']} | {s['lr']:g} | {s['time_share']:g} |" for k, s in r["stages"].items()]
    w = r["stage2_weights"]
    return f"""{p.get('recipe', '')}; the values of `model_runtime/training/recipe.py` with the
command's options (provenance `resolved_recipe` in `config.json`).
- Corpus: {_corpus_line(r)}.
- Feature cache: {r['teacher_variants']} teacher variants per utterance; training windows of
  {r['window_frames']} frames (FLINT {r['flint_window_frames']}); seed {r['seed']}.
- Budget {r['minutes_budget']:g} min on {p.get('device', '?')} (steps scale
  {p.get('steps_scale', '?')}), torch {p.get('torch', '?')}; lip reader and emotion classifier
  {r['perceptual_hidden']} wide.

| stage | steps run (planned) | minutes | batch | learning rate | budget share |
| --- | --- | --- | --- | --- | --- |
{chr(10).join(rows)}

- Loss weights: FLINT KL {r['flint_kl_weight']:g}; stage 1 lip gap {r['stage1_gap_weight']:g},
  mouth width {r['stage1_width_weight']:g}; stage 2 vertex {w['vertex']:g}, lip reading
  {w['lip']:g}, emotion {w['emotion']:g}, lip gap {w['gap']:g} (frames where the teacher's lips
  touch counted {1 + w['closed']:g}x), mouth width {w['width']:g} (vertex loss in mm^2, lip gap
  and width L1 in mm, perceptual losses as 1 - cosine).{_stage2_extras(r)}"""


def _stage2_extras(r: dict) -> str:
    """A bullet for the stage-2 options a resolved recipe turned on (none: empty)."""
    parts = []
    if r.get("speaker_balance"):
        parts.append(f"utterances drawn by frames / voice frames^{r['speaker_balance']:g}")
    if r.get("feature_augment"):
        parts.append("each batch's log-mel warped, tilted and band-masked afresh")
    if r.get("speaker_adversary"):
        parts.append(f"a speaker adversary's reversed gradient x{r['speaker_adversary']:g}")
    if r.get("upper_face"):
        parts.append(f"an upper-face L1 term x{r['upper_face']:g}")
    if r.get("mouth_emotion"):
        parts.append(f"a smile/dimple/frown L1 term x{r['mouth_emotion']:g}")
    if r.get("encoder_lr_scale", 1.0) != 1.0:
        parts.append("the audio encoder frozen" if not r["encoder_lr_scale"] else
                     f"the audio encoder trained at {r['encoder_lr_scale']:g}x the learning rate")
    if r.get("flint_lr_scale"):
        parts.append(f"the FLINT decoder trained at {r['flint_lr_scale']:g}x the learning rate "
                     "(not frozen, unlike EMOTE)")
    return "\n- Stage 2 also: " + "; ".join(parts) + "." if parts else ""


def phases(p: dict) -> list[dict]:
    """The training records of every phase behind a checkpoint, oldest first: the base, then
    each fine-tune (`init_from` chain of the provenance)."""
    chain = [p]
    while isinstance(chain[-1].get("init_from"), dict):
        chain.append(chain[-1]["init_from"].get("provenance", {}))
    return chain[::-1]


def _lineage_section(p: dict) -> str:
    """A table of the phases (empty for a checkpoint trained in one run)."""
    chain = phases(p)
    if len(chain) < 2:
        return ""
    rows = []
    for n, rec in enumerate(chain):
        m = rec.get("metrics", {}).get("stage2", {})
        closure = m.get("val_closure_recall")
        rows.append(f"| {'base' if n == 0 else f'fine-tune {n}'} | `{rec.get('command', '?')}` | "
                    f"{rec.get('git_commit', '?')}, {rec.get('date', '?')} | "
                    f"{sum(rec.get('minutes', {}).values()):.1f} | "
                    f"{'-' if closure is None else f'{closure:.3f}'} |")
    return f"""
## Phases
This checkpoint is the last of {len(chain)} training runs, each started from the one before
(`init_from` in `config.json`); the sections above describe the last.

| phase | command | commit, date | training minutes | stage-2 val closure (that run's val split) |
| --- | --- | --- | --- | --- |
{chr(10).join(rows)}
"""


def _data_limit(data: dict) -> str:
    """The first line of Limits: what speech the last phase learned from."""
    from .speaker_split import UNKNOWN_SPEAKERS, load_heldout

    held = load_heldout()[0]  # counted in `voices`, but only validated on
    game = sorted({v for v in data.get("voices", {}) if v.startswith("queen:")}
                  - held - UNKNOWN_SPEAKERS)
    sky = any(v.startswith("sky:") for v in data.get("voices", {}))
    if game:
        return (f"English only; the last phase learned from the recorded voices of {len(game)} "
                "game characters" + (" and the cast of Beneath a Steel Sky" if sky else "")
                + " and one Asterisk speaker (earlier phases: synthetic TTS "
                "speech too): expect weaker lip sync on noisy, fast or accented speech and on "
                "singing, and see the held-out speakers' figures for voices it never heard.")
    return ("English only; trained mostly on synthetic (TTS) speech plus recorded prompts of one "
            "real speaker (Asterisk): expect weaker lip sync on other real, noisy, fast or "
            "accented speech and on singing.")


def render(config: dict) -> str:
    """Markdown text of the model card for a checkpoint config."""
    p = config.get("provenance", {})
    data = p.get("trained_on", {})
    engines = sorted(set(data.get("engines", {})) | set(data.get("sources", {})))
    lic = [f"- {SOURCE_LICENCES[e]}" for e in engines if e in SOURCE_LICENCES]
    if any(v.startswith("sky:") for v in data.get("voices", {})):
        from .sky_data import SKY_LICENCE

        lic.append(f"- Beneath a Steel Sky speech: {SKY_LICENCE}")
    metrics = p.get("metrics", {})
    mlines = [f"| {stage} | " + ", ".join(f"{k} {v:.4g}" for k, v in m.items()) + " |"
              for stage, m in metrics.items()]
    return f"""# Default model: EMOTE-style talking head for the open head

Generated by `model_runtime/training/model_card.py` from `config.json` (provenance); retrain
with the command below to regenerate it.

## What it is
Audio (16 kHz) plus a per-frame condition [emotion 8 | intensity 3 | speaking style
{len(config.get('conditions', {}).get('identities', []))}] in, 25 fps animation of the open head
out: {len(config.get('output', {}).get('exp_names', []))} ARKit-named expression channels and the
jaw axis-angle. Architecture: EMOTE v2's talking head with a small log-mel audio encoder
(trained from scratch) instead of wav2vec2, and a FLINT motion-prior decoder as the output
layer. Styles: {', '.join(config.get('conditions', {}).get('identities', []))}.

## Data
- {data.get('utterances', '?')} utterances, {data.get('minutes', '?')} minutes of speech
  ({'TTS only' if p.get('tts_only') else 'all sources'}).
- Voices: {_table(_voice_groups(data.get('voices', {})))}
- Engines: {_table(data.get('engines', {}))}; sources: {_table(data.get('sources', {}))}
- Licences of the speech:
{chr(10).join(lic) if lic else '- (no source licence recorded)'}
- Phone timings come from the TTS engines (or forced alignment for recorded prompts).
  Clips listed in `reserved_clips.txt` are never used for training.
- Real game speakers held out of training (whole characters,
  `model_runtime/training/heldout_clips.txt`): {data.get('heldout_utterances', 0)} utterances,
  used for validation only; game training clips augmented
  {data.get('game_copies', 0)}x (speaker, rate, room, noise, 16/11/8 kHz channel).

## Teacher
There is no motion capture: targets are produced by `{p.get('teacher', 'the procedural teacher')}`.
The model can only be as good as that teacher; it learns to reproduce it from audio alone.

## Recipe
{_recipe_section(p)}
- Command: `{p.get('command', '')}` (commit {p.get('git_commit', '?')}, {p.get('date', '?')}).

## Metrics (last logged values; val_* on the held-out val split)
| stage | values |
| --- | --- |
{chr(10).join(mlines) if mlines else '| - | not trained yet |'}

{_checks(p.get('checks'))}
closure_recall / false_closure: METRICS.md bilabial closure recall and false-closure rate on
val clips under the neutral condition (teacher_* = the teacher's own targets, the ceiling).
Full evaluation on real speech: `bench/`.

{_lineage_section(p)}
## Limits
- {_data_limit(data)}
- Input audio must be normalised over the whole clip (zero mean, unit variance) before the
  log-mel features, as in training (config `audio_normalisation`).
- Emotions and styles are the teacher's procedural patterns, not recorded human performances.
- Drives the open head's channels; other rigs work through ARKit-named shape keys only where
  the names match. Blinks, gaze and head motion are not learned: the runtime adds them
  procedurally from the speech (`model_runtime/alive.py`).
"""


def write_model_card(folder: Path, config: dict) -> Path:
    """Write MODEL_CARD.md into the checkpoint folder."""
    from ..safe_write import write_text

    path = Path(folder) / "MODEL_CARD.md"
    write_text(path, render(config))
    return path
