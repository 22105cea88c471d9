#!/usr/bin/env bash
# Install the free speech engines and tools the training corpus uses (Debian/Ubuntu, as root),
# plus pocketsphinx (forced alignment, CMU dictionary) into the project's virtual environment.
# Usage: sudo scripts/install_speech_tools.sh [path/to/venv]   (default: .venv)
set -euo pipefail
VENV="${1:-.venv}"
export DEBIAN_FRONTEND=noninteractive
apt-get update
apt-get install -y --no-install-recommends \
    flite espeak-ng libespeak-ng1 festival festvox-kallpc16k festvox-us-slt-hts \
    sox libsox-fmt-all ffmpeg \
    asterisk-core-sounds-en asterisk-core-sounds-en-wav
# the real voices of the fine-tunes: two freeware games with acted English dialogue (Debian main)
apt-get install -y --no-install-recommends flight-of-the-amazon-queen beneath-a-steel-sky || \
    echo "the games could not be installed: training will make the base model only"
# RHVoice's English voices are LGPL but Debian ships them outside "main"; try, skip if absent.
if ! apt-cache show rhvoice-english >/dev/null 2>&1; then
    echo "rhvoice-english not in the enabled apt components (needs contrib/non-free); skipped"
else
    apt-get install -y --no-install-recommends rhvoice rhvoice-english || \
        echo "RHVoice install failed; skipped"
fi
"$VENV/bin/pip" install "pocketsphinx==5.1.1"
echo "speech tools installed"
