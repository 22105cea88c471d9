#!/usr/bin/env bash
# Train the bundled default model from nothing on this machine (2 CPU cores: under 2 h; a
# GPU, when torch sees one, runs 6x the steps in the same budget). Every step resumes: rerun the
# same command after an interruption and finished work is kept.
#   scripts/train_default_model.sh [--tts-only] [--no-game] [--out model_runtime/default_model] [--data data]
# --data holds the corpus and the stage checkpoints (an empty folder trains from nothing).
# Needs the speech tools (sudo scripts/install_speech_tools.sh) and ./run setup.
# The recipe (corpus, step counts, loss weights, budget) is model_runtime/training/recipe.py;
# train_default reads it, builds the corpus under --data, then the cache and all five stages.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
EXTRA=()
OUT=model_runtime/default_model
DATA=data
USE_GAME=1
while [ $# -gt 0 ]; do
    case "$1" in
        --tts-only) EXTRA+=(--tts-only); USE_GAME=0; shift ;;
        --no-game) EXTRA+=(--no-game); USE_GAME=0; shift ;;
        --out) OUT=$2; shift 2 ;;
        --data) DATA=$2; shift 2 ;;
        *) echo "unknown option $1" >&2; exit 2 ;;
    esac
done
# 1-2. Corpus (TTS voices and the Asterisk prompts; the game's real speakers when
#      flight-of-the-amazon-queen is installed), feature cache and all five stages.
$PY -m model_runtime.training.train_default --data "$DATA" --out "$OUT" --resume "${EXTRA[@]}"
# 3. Measure it: held-out game speakers (full band and 8 kHz telephone, with the mm figures)
#    first, then the same-speaker real-speech dev set.
GAME_CORPUS=$DATA/queen_corpus
if [ "$USE_GAME" = 1 ] && [ -f "$GAME_CORPUS/.done" ]; then
    $PY bench/eval_lipsync.py --model "$OUT" --clips heldout --corpus "$GAME_CORPUS"
fi
$PY bench/eval_lipsync.py --model "$OUT" --clips dev
$PY bench/eval_emotion.py --model "$OUT" --clips dev
