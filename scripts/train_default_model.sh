#!/usr/bin/env bash
# Train the bundled default model from nothing on this machine (2 CPU cores: about 2 hours; a
# GPU, when torch sees one, runs 6x the steps in the same budget). Every step resumes: rerun the
# same command after an interruption and finished work is kept.
#   scripts/train_default_model.sh [--tts-only] [--out model_runtime/default_model]
# Needs the speech tools (sudo scripts/install_speech_tools.sh) and ./run setup.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
EXTRA=()
OUT=model_runtime/default_model
WORK=data/train_run
while [ $# -gt 0 ]; do
    case "$1" in
        --tts-only) EXTRA+=(--tts-only); WORK=data/train_run_tts_only; shift ;;
        --out) OUT=$2; shift 2 ;;
        *) echo "unknown option $1" >&2; exit 2 ;;
    esac
done
# 1. Corpus (deterministic per seed; resumes by utterance id): 1.5 h of synthetic speech from
#    Flite, Festival and eSpeak NG voices, plus the Asterisk prompts force-aligned with
#    pocketsphinx (dev and reserved prompts are never used).
[ -f data/corpus/.stage1_done ] || { $PY -m model_runtime.training.corpus --out data/corpus --hours 0.5 --seed 0 --asterisk && touch data/corpus/.stage1_done; }
[ -f data/corpus/.stage2_done ] || { $PY -m model_runtime.training.corpus --out data/corpus --hours 1.0 --seed 1 && touch data/corpus/.stage2_done; }
# 2. Feature cache and all five stages (FLINT, stage 1, lip reader, emotion classifier,
#    stage 2), time-capped so the whole script stays within about 2 hours on 2 cores.
RESUME=()
[ -d "$WORK" ] && RESUME=(--resume)
$PY -m model_runtime.training.train_default --corpus data/corpus --work "$WORK" --out "$OUT" \
    --minutes-budget 95 "${RESUME[@]}" "${EXTRA[@]}"
# 3. Measure it on the real-speech dev set.
$PY bench/eval_lipsync.py --model "$OUT" --clips dev
$PY bench/eval_emotion.py --model "$OUT" --clips dev
