"""pip as on a machine without network, for the 'Set up runtime' tests."""

from __future__ import annotations

import os


def offline_pip(monkeypatch) -> None:
    """No pip config files or PIP_* settings (this machine has local wheel folders), and an
    index that refuses every connection."""
    for key in list(os.environ):
        if key.startswith("PIP_"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("PIP_INDEX_URL", "http://127.0.0.1:9/simple")  # discard port: refused
    monkeypatch.setenv("PIP_RETRIES", "1")  # pip then logs the refused connection
    monkeypatch.setenv("PIP_TIMEOUT", "5")
