#!/usr/bin/env bash
# Train the bundled default model from nothing on this machine (2 CPU cores: about 4 h with
# the fine-tunes, under 2 h for the base alone; a GPU, when torch sees one, runs 6x the steps in
# the same budget). Every step resumes: rerun the
# same command after an interruption and finished work is kept.
#   scripts/train_default_model.sh [--tts-only] [--no-game] [--out model_runtime/default_model] [--data data]
# --data holds the corpus and the stage checkpoints (an empty folder trains from nothing).
# Needs the speech tools (sudo scripts/install_speech_tools.sh) and ./run setup.
# The recipe (corpus, step counts, loss weights, budget) is model_runtime/training/recipe.py;
# train_default reads it, builds the corpus under --data, then the cache and all five stages;
# then, when the game is installed, the recipe's fine-tunes on its real speakers, in order.
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
FINE_TUNES=$($PY -c "from model_runtime.training.recipe import SHIPPED; print(len(SHIPPED.fine_tunes))")
HAVE_GAME=$($PY -c "from model_runtime.training.queen_data import QUEEN_1C; print(int(QUEEN_1C.is_file()))")
if [ "$USE_GAME" = 1 ] && [ "$HAVE_GAME" = 1 ] && [ "$FINE_TUNES" -gt 0 ]; then
    # 1-2. The base: corpus (TTS voices and the Asterisk prompts), feature cache and all five
    #      stages, into DATA/base_model.
    $PY -m model_runtime.training.train_default --data "$DATA" --no-game --out "$DATA/base_model" --resume
    # 2b. The recipe's fine-tunes on the games' real speakers (DATA/asterisk, DATA/queen_corpus and,
    #     for the fifth, DATA/sky_corpus, built first), each from the previous one's checkpoint.
    for n in $(seq 1 "$FINE_TUNES"); do
        dest=$DATA/fine_tune_${n}_model
        [ "$n" = "$FINE_TUNES" ] && dest=$OUT
        $PY -m model_runtime.training.train_default --data "$DATA" --fine-tune "$n" --out "$dest" --resume
    done
else
    # 1-2. Without the game: the base alone (corpus, feature cache and all five stages).
    [ "$USE_GAME" = 1 ] && echo "flight-of-the-amazon-queen is not installed: training the base model only" >&2
    $PY -m model_runtime.training.train_default --data "$DATA" --out "$OUT" --resume "${EXTRA[@]}"
fi
# 3. Measure it: held-out game speakers (full band and 8 kHz telephone, with the mm figures)
#    first, then the same-speaker real-speech dev set.
GAME_CORPUS=$DATA/queen_corpus
if [ "$USE_GAME" = 1 ] && [ -f "$GAME_CORPUS/.done" ]; then
    $PY bench/eval_lipsync.py --model "$OUT" --clips heldout --corpus "$GAME_CORPUS"
fi
$PY bench/eval_lipsync.py --model "$OUT" --clips dev
$PY bench/eval_emotion.py --model "$OUT" --clips dev
