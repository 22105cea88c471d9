"""The one restricted unpickler, through both of its callers: FLAME `.pkl` loading and the
official-checkpoint reader. A file that asks for code (os.system, eval, subprocess, a global
outside the caller's allow-list) is refused before anything runs, with that caller's advice;
what each caller legitimately needs still loads."""

from __future__ import annotations

import builtins
import collections
import contextlib
import os
import sys
import types
import pickle
import subprocess
from pathlib import Path
from typing import Callable, NamedTuple

import numpy as np
import pytest
import torch

from emote.model_runtime.convert_official import load_torch_checkpoint
from emote.model_runtime.errors import EmoteInputError
from emote.model_runtime.heads.flame_pickle import load_flame
from emote.model_runtime.safe_pickle import safe_load
from tests.helpers import synthetic_flame_dict
from tests.helpers.official_emote import lightning_ckpt


class Caller(NamedTuple):
    write: Callable[[Path, object, int], None]  # (path, extra object to embed, pickle protocol)
    plain_load: Callable[[Path], object]  # an ordinary, unrestricted load (runs payloads)
    loads: tuple[Callable[[Path], object], ...]  # the restricted entry points
    advice: str  # what the refusal tells the user


def _write_flame(path: Path, extra: object, protocol: int) -> None:
    content = synthetic_flame_dict(n_exp=2, n_shape=0)
    content.pop("_facts")
    content["extra"] = extra
    path.write_bytes(pickle.dumps(content, protocol=protocol))


def _write_checkpoint(path: Path, extra: object, protocol: int) -> None:
    torch.save({"state_dict": {"w": torch.zeros(2)}, "hyper_parameters": extra}, path,
               pickle_protocol=protocol)


CALLERS = {
    "flame": Caller(_write_flame, lambda p: pickle.loads(p.read_bytes()), (safe_load, load_flame),
                    "Only FLAME model files are accepted"),
    "checkpoint": Caller(_write_checkpoint,
                         lambda p: torch.load(p, weights_only=False)["hyper_parameters"],
                         (load_torch_checkpoint,), "not an official EMOTE checkpoint"),
}


class _Payload:
    def __init__(self, func, args):
        self.func, self.args = func, args

    def __reduce__(self):
        return self.func, self.args


def _payloads(marker: Path) -> dict:
    code = f"open({str(marker)!r}, 'w').close()"
    return {
        "system": _Payload(os.system, (f"touch '{marker}'",)),
        "eval": _Payload(builtins.eval, (code,)),
        "exec": _Payload(builtins.exec, (code,)),
        "Popen": _Payload(subprocess.Popen, (["touch", str(marker)],)),
        "getattr": _Payload(builtins.getattr, ("text", "upper")),
        "join": _Payload(os.path.join, ("a", "b")),  # harmless, but outside both allow-lists
    }


@contextlib.contextmanager
def _foreign_class(dotted: str):
    """A class that pickles as `dotted` (e.g. chumpy.ch.Ch), importable only inside the block."""
    module, name = dotted.rsplit(".", 1)
    cls = type(name, (), {"__module__": module, "__qualname__": name})
    parts = module.split(".")
    mods = {".".join(parts[:i]): types.ModuleType(".".join(parts[:i]))
            for i in range(1, len(parts) + 1)}
    setattr(mods[module], name, cls)
    saved = {m: sys.modules.get(m) for m in mods}
    sys.modules.update(mods)
    try:
        yield cls
    finally:
        for m, old in saved.items():
            if old is None:
                sys.modules.pop(m, None)
            else:
                sys.modules[m] = old


def _refused(caller: Caller, path: Path, what: str) -> None:
    for load in caller.loads:
        with pytest.raises(EmoteInputError) as err:
            load(path)
        assert err.value.kind == "unsafe_pickle", load
        msg = err.value.message
        assert "refuses to load" in msg and path.name in msg and what in msg, msg
        assert caller.advice in msg, msg


@pytest.mark.parametrize("caller", sorted(CALLERS))
@pytest.mark.parametrize("name", ["system", "eval", "exec", "Popen", "getattr", "join"])
@pytest.mark.parametrize("protocol", [2, 4])
@pytest.mark.filterwarnings("ignore:Detected pickle protocol 4")  # torch notes a non-default one
def test_code_asking_pickle_is_refused_before_running(tmp_path, caller, name, protocol):
    marker = tmp_path / "pwned"
    path = tmp_path / "model.file"
    CALLERS[caller].write(path, _payloads(marker)[name], protocol)
    if name not in ("getattr", "join"):  # the payload is real: an ordinary load runs it
        obj = CALLERS[caller].plain_load(path)
        if name == "Popen":
            (obj["extra"] if isinstance(obj, dict) else obj).wait()
        assert marker.exists()
        marker.unlink()
    _refused(CALLERS[caller], path, name)
    assert not marker.exists()


@pytest.mark.parametrize("caller, stand_in", [("flame", "chumpy.ch.Ch"),
                                              ("checkpoint", "omegaconf.dictconfig.DictConfig")])
def test_payload_hidden_in_a_stand_ins_state_is_refused(tmp_path, caller, stand_in):
    """Foreign classes become stand-ins that record their state; a payload inside that state
    is still never resolved, while the same stand-in with harmless state loads."""
    marker = tmp_path / "pwned"
    path = tmp_path / "model.file"
    with _foreign_class(stand_in) as cls:
        obj = cls()
        obj.x = _payloads(marker)["system"]
        CALLERS[caller].write(path, obj, 2)
    _refused(CALLERS[caller], path, "system")
    assert not marker.exists()
    with _foreign_class(stand_in) as cls:
        obj = cls()
        obj.x = np.zeros(2)
        CALLERS[caller].write(path, obj, 2)
    loaded = CALLERS[caller].loads[0](path)
    if caller == "flame":  # the chumpy stand-in became its array
        np.testing.assert_array_equal(loaded["extra"], np.zeros(2))
    else:  # the metadata stays an inert record of its state
        meta = loaded["hyper_parameters"]
        assert type(meta).source == stand_in and meta.state["x"].shape == (2,)


@pytest.mark.parametrize("caller", sorted(CALLERS))
def test_allowed_helper_misused_is_refused_with_the_callers_advice(tmp_path, caller):
    """numpy's _reconstruct is allowed for plain arrays only; asked for another (allowed) type,
    it is refused, and the refusal names the file and gives the advice of its caller."""
    from emote.model_runtime.safe_pickle import _np_reconstruct

    path = tmp_path / "model.file"
    CALLERS[caller].write(path, _Payload(_np_reconstruct, (set, (0,), b"b")), 2)
    _refused(CALLERS[caller], path, "_reconstruct")


@pytest.mark.parametrize("caller", sorted(CALLERS))
def test_global_of_the_other_callers_list_is_refused(tmp_path, caller):
    """Each caller's allow-list is its own: a FLAME file may not ask for OrderedDict (a
    checkpoint may), a checkpoint may not ask for scipy's sparse matrices (a FLAME file may)."""
    path = tmp_path / "model.file"
    if caller == "flame":
        CALLERS[caller].write(path, collections.OrderedDict(a=1), 2)
        _refused(CALLERS[caller], path, "collections.OrderedDict")
    else:
        scipy_sparse = pytest.importorskip("scipy.sparse", reason="the sparse case needs scipy")
        CALLERS[caller].write(path, scipy_sparse.csc_matrix(np.eye(2)), 2)
        _refused(CALLERS[caller], path, "csc_matrix")


def test_checkpoint_globals_still_load(tmp_path):
    """What a Lightning checkpoint holds besides tensors: OrderedDict, torch dtypes and sizes,
    numpy arrays, plain builtins and foreign metadata classes (as inert stand-ins)."""
    extra = {"order": collections.OrderedDict(a=1), "dtype": torch.float16,
             "size": torch.Size([2, 3]), "np": np.arange(3.0), "set": {1, 2},
             "complex": 1 + 2j, "bytes": b"\x00\x01", "tuple": (1, 2.5, "x", True)}
    path = tmp_path / "last.ckpt"
    _write_checkpoint(path, extra, 2)
    loaded = load_torch_checkpoint(path)["hyper_parameters"]
    assert loaded["order"] == collections.OrderedDict(a=1)
    assert loaded["dtype"] is torch.float16 and loaded["size"] == torch.Size([2, 3])
    np.testing.assert_array_equal(loaded["np"], np.arange(3.0))
    assert loaded["set"] == {1, 2} and loaded["complex"] == 1 + 2j
    assert loaded["bytes"] == b"\x00\x01" and loaded["tuple"] == (1, 2.5, "x", True)
    meta = load_torch_checkpoint(lightning_ckpt(tmp_path / "x.ckpt", {"w": torch.ones(1)}))
    assert type(meta["hyper_parameters"]).source == "omegaconf.dictconfig.DictConfig"
    assert not callable(meta["hyper_parameters"])


def test_flame_persistent_ids_are_refused(tmp_path):
    """torch supplies its own persistent_load for tensor storages; a FLAME file gets none."""
    path = tmp_path / "generic_model.pkl"
    path.write_bytes(b"\x80\x02X\x03\x00\x00\x00abcQ.")  # BINPERSID on the string "abc"
    with pytest.raises(EmoteInputError) as err:
        load_flame(path)
    assert err.value.kind == "unsafe_pickle" and "persistent object 'abc'" in err.value.message
