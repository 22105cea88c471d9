"""The warm runtime's protocol: cancel stops the request in flight and the process stays warm."""

from __future__ import annotations

import io
import json
import os
import threading
import time

import pytest

from emote import model_runtime
from emote.model_runtime import serve


class _Pipe(io.TextIOBase):
    """A stdin the test writes to line by line while serve() reads it in its own thread."""

    def __init__(self):
        r, w = os.pipe()
        self.reader, self.writer = os.fdopen(r, "r"), os.fdopen(w, "w")

    def send(self, obj) -> None:
        self.writer.write((obj if isinstance(obj, str) else json.dumps(obj)) + "\n")
        self.writer.flush()


class _FakeInference:
    """Stands in for model_runtime.inference: reports progress until told to stop."""

    def __init__(self):
        self.started = threading.Event()
        self.finished: list[str] = []

    def run_request(self, request, out, progress):
        deadline = time.monotonic() + 10
        step = 0
        while request.get("long") and time.monotonic() < deadline:
            progress("inference", step, 10 ** 6)  # raises once the cancel has been read
            self.started.set()
            step += 1
            time.sleep(0.005)
        progress("inference", 1, 1)
        with open(out, "w") as fh:
            fh.write("result")
        self.finished.append(out)


@pytest.fixture
def fake(monkeypatch):
    f = _FakeInference()
    monkeypatch.setattr(model_runtime, "inference", f, raising=False)
    monkeypatch.setitem(__import__("sys").modules, "emote.model_runtime.inference", f)
    return f


def test_cancel_stops_the_request_in_flight_and_serves_the_next(fake, tmp_path):
    stdin, out = _Pipe(), io.StringIO()
    worker = threading.Thread(target=serve.serve, args=(stdin.reader, out, "{error}"))
    worker.start()
    long_out, short_out = tmp_path / "long.npz", tmp_path / "short.npz"
    stdin.send({"id": "long", "request": {"long": True}, "out": str(long_out)})
    assert fake.started.wait(10), "the long request never started"
    stdin.send({"cmd": "cancel", "id": "long"})
    stdin.send({"id": "short", "request": {}, "out": str(short_out)})
    stdin.send({"cmd": "shutdown"})
    worker.join(20)
    assert not worker.is_alive()
    events = [json.loads(line) for line in out.getvalue().splitlines()]
    finals = [(e.get("id"), e["event"], e.get("kind")) for e in events
              if e["event"] in ("done", "error")]
    assert finals == [("long", "error", "cancelled"), ("short", "done", None)]
    assert not long_out.exists() and short_out.read_text() == "result"


def test_a_cancel_for_a_queued_request_drops_it_before_it_starts(fake, tmp_path):
    stdin, out = _Pipe(), io.StringIO()
    stdin.send({"id": "a", "request": {"long": True}, "out": str(tmp_path / "a")})
    stdin.send({"id": "b", "request": {}, "out": str(tmp_path / "b")})
    worker = threading.Thread(target=serve.serve, args=(stdin.reader, out, "{error}"))
    worker.start()
    assert fake.started.wait(10)
    stdin.send({"cmd": "cancel", "id": "b"})  # b is still waiting behind a
    stdin.send({"cmd": "cancel", "id": "a"})
    stdin.send({"cmd": "shutdown"})
    worker.join(20)
    events = [json.loads(line) for line in out.getvalue().splitlines()]
    finals = [(e.get("id"), e.get("kind")) for e in events if e["event"] == "error"]
    assert sorted(finals) == [("a", "cancelled"), ("b", "cancelled")]
    assert fake.finished == []
