"""The one restricted unpickler, for FLAME model files and (through torch.load) checkpoints.

FLAME's `.pkl` files are Python-2-era pickles holding numpy arrays, chumpy `Ch` arrays and scipy
sparse matrices; the official EMOTE `.ckpt` files hold tensors and Lightning metadata. A plain
`pickle.load` would run whatever the file names, so this unpickler only hands out what an
`AllowList` names: harmless callables (numpy's array rebuilders, a few builtins, for checkpoints
torch's tensor rebuilders) and stand-ins that merely record the state of foreign objects (chumpy,
scipy-sparse, omegaconf...). Any other global is refused in `find_class`, i.e. before anything in
the file has been called. `FLAME_FILES` is the FLAME list (no chumpy or scipy needed);
`model_runtime.convert_official` builds the checkpoint list from `BASIC_NAMES`. After loading a
FLAME file, `to_plain` turns the stand-ins into ordinary numpy arrays (sparse matrices dense).
"""

from __future__ import annotations

import io
import pickle
import types
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .errors import EmoteInputError


def _numpy_attr(submodule: str, name: str) -> Any:
    """numpy's internal pickle helpers live in numpy._core (2.x) or numpy.core (1.x)."""
    import importlib

    order = ("numpy._core", "numpy.core") if int(np.__version__.split(".")[0]) >= 2 \
        else ("numpy.core", "numpy._core")
    for base in order:
        try:
            return getattr(importlib.import_module(f"{base}.{submodule}"), name)
        except (ImportError, AttributeError):
            continue
    raise ImportError(f"numpy has no {submodule}.{name}")  # pragma: no cover - numpy layout change


_np_reconstruct = _numpy_attr("multiarray", "_reconstruct")
_np_scalar = _numpy_attr("multiarray", "scalar")
_np_frombuffer = _numpy_attr("numeric", "_frombuffer")


class _Refused(pickle.UnpicklingError):
    """Raised by the allowed helpers; the unpickler turns it into its file kind's refusal."""

    def __init__(self, what: str):
        super().__init__(what)
        self.what = what


class _Guarded:
    """Base of the whitelisted helper callables: no __dict__ and no slots, so a pickle's BUILD
    opcode cannot change them."""

    __slots__ = ()


class _Reconstruct(_Guarded):
    """numpy's `_reconstruct`, limited to plain ndarrays."""

    __slots__ = ()

    def __call__(self, subtype: Any, shape: Any, dtype: Any) -> np.ndarray:
        if subtype is not np.ndarray:
            raise _Refused(f"numpy's _reconstruct on {subtype!r}")
        return _np_reconstruct(subtype, shape, dtype)


class _CodecsEncode(_Guarded):
    """`_codecs.encode` as Python 3 uses it to pickle bytes at protocols <= 2 (latin1/utf-8 only)."""

    __slots__ = ()

    def __call__(self, text: Any, encoding: str = "utf-8") -> bytes:
        if not isinstance(text, str) or not isinstance(encoding, str) or \
                encoding.lower().replace("_", "-") not in ("latin1", "latin-1", "iso-8859-1",
                                                            "utf-8", "utf8"):
            raise pickle.UnpicklingError("unexpected use of _codecs.encode")
        return text.encode(encoding)


class _Reconstructor(_Guarded):
    """`copyreg._reconstructor` (pickle protocols 0/1), for the stand-in classes only."""

    __slots__ = ()

    def __call__(self, cls: Any, base: Any, state: Any) -> Any:
        if isinstance(cls, type) and issubclass(cls, StateRecorder) and base is object \
                and state is None:
            return cls()
        raise _Refused(f"copyreg._reconstructor on {cls!r}")


class StateRecorder:
    """Stand-in for a foreign class: records constructor arguments and pickled state, runs nothing."""

    source: str = "?"  # "module.name" that the pickle asked for

    def __init__(self, *args: Any, **kwargs: Any):
        self.args = args
        self.kwargs = kwargs

    def __setstate__(self, state: Any) -> None:
        self.state = state

    def state_dict(self) -> dict:
        state = getattr(self, "state", None)
        if isinstance(state, tuple) and len(state) == 2 and isinstance(state[0], dict):
            state = {**state[0], **(state[1] or {})}  # (dict, slots) form
        return dict(state) if isinstance(state, dict) else {}


class ChumpyRecord(StateRecorder):
    """Stand-in for chumpy objects (`chumpy.ch.Ch` and its operators)."""


class SparseRecord(StateRecorder):
    """Stand-in for scipy.sparse csc/csr/coo matrices and arrays."""


_SPARSE_NAMES = {"csc_matrix", "csr_matrix", "coo_matrix", "csc_array", "csr_array", "coo_array"}

# Harmless globals every allow-list starts from: numpy's array rebuilders, bytes at protocol 2,
# the protocol 0/1 object rebuilder (for stand-ins only) and a few builtins.
BASIC_NAMES: dict[str, Any] = {}
for _mod in ("numpy.core.multiarray", "numpy._core.multiarray"):
    BASIC_NAMES[f"{_mod}._reconstruct"] = _Reconstruct()
    BASIC_NAMES[f"{_mod}.scalar"] = _np_scalar
for _mod in ("numpy.core.numeric", "numpy._core.numeric"):
    BASIC_NAMES[f"{_mod}._frombuffer"] = _np_frombuffer
BASIC_NAMES.update({
    "numpy.ndarray": np.ndarray,
    "numpy.dtype": np.dtype,
    "_codecs.encode": _CodecsEncode(),
    "copyreg._reconstructor": _Reconstructor(),
    "copy_reg._reconstructor": _Reconstructor(),
})
for _mod in ("builtins", "__builtin__"):
    for _name, _obj in (("set", set), ("frozenset", frozenset), ("complex", complex),
                        ("slice", slice), ("bytearray", bytearray),
                        ("object", object)):
        BASIC_NAMES[f"{_mod}.{_name}"] = _obj


@dataclass(frozen=True)
class AllowList:
    """What one kind of file may ask the unpickler for.

    `names` maps "module.name" to the object handed out; `stand_in(module, name)` returns the
    StateRecorder subclass that replaces a foreign class, or None; `accepted` ends the refusal
    message: which files are accepted and where to get a good one.
    """

    names: Mapping[str, Any]
    stand_in: Callable[[str, str], type | None]
    accepted: str

    def refusal(self, source: str, what: str) -> EmoteInputError:
        return EmoteInputError(
            "unsafe_pickle", f"EMOTE refuses to load {source}: it asks to run {what}. "
            + self.accepted)


def _flame_stand_in(module: str, name: str) -> type | None:
    if "." not in name and (module == "chumpy" or module.startswith("chumpy.")):
        return ChumpyRecord
    if module.startswith("scipy.sparse") and name in _SPARSE_NAMES:
        return SparseRecord
    return None


FLAME_FILES = AllowList(
    names=BASIC_NAMES, stand_in=_flame_stand_in,
    accepted="Only FLAME model files are accepted (numpy arrays, chumpy arrays, sparse "
             "matrices); download the model again from https://flame.is.tue.mpg.de and select "
             "that .pkl file.")


class RestrictedUnpickler(pickle.Unpickler):
    """Unpickler whose `find_class` only resolves what its AllowList names (see module doc)."""

    def __init__(self, file: Any, source: str = "this file", allow: AllowList = FLAME_FILES,
                 extra_allowed: Mapping[str, Any] | None = None, **kwargs: Any):
        kwargs.setdefault("encoding", "latin1")
        super().__init__(file, **kwargs)
        self.source = source
        self.allow = allow
        self.allowed = {**allow.names, **dict(extra_allowed or {})}
        self._records: dict[str, type] = {}  # stand-in classes, fresh per load
        self.persistent_load = self._refuse_persistent  # torch.load sets its own afterwards

    def _record_class(self, base: type, full: str) -> type:
        """One stand-in subclass per pickled class name, so conversion knows what it stood for."""
        if full not in self._records:
            self._records[full] = type(full.rsplit(".", 1)[-1], (base,), {"source": full})
        return self._records[full]

    def find_class(self, module: str, name: str) -> Any:
        full = f"{module}.{name}"
        if full in self.allowed:
            return self.allowed[full]
        base = self.allow.stand_in(module, name)
        if base is not None:
            return self._record_class(base, full)
        raise self.allow.refusal(self.source, full)

    def _refuse_persistent(self, pid: Any) -> Any:
        raise _Refused(f"a persistent object {pid!r}")

    def load(self) -> Any:
        try:
            return super().load()
        except _Refused as exc:
            raise self.allow.refusal(self.source, exc.what) from None


def torch_pickle_module(allow: AllowList, source: str) -> types.SimpleNamespace:
    """A `pickle_module` for `torch.load` that reads with RestrictedUnpickler and `allow`
    (torch installs its own `persistent_load` for the tensor storages)."""

    class TorchUnpickler(RestrictedUnpickler):
        def __init__(self, file: Any, **kwargs: Any):
            super().__init__(file, source=source, allow=allow, **kwargs)

    return types.SimpleNamespace(Unpickler=TorchUnpickler,
                                 load=lambda file, **kw: TorchUnpickler(file, **kw).load(),
                                 __name__="model_runtime.safe_pickle.restricted")


def safe_loads(data: bytes, extra_allowed: Mapping[str, Any] | None = None,
               source: str = "this data", plain: bool = True) -> Any:
    """Unpickle bytes with `RestrictedUnpickler`; with `plain`, stand-ins become numpy arrays."""
    try:
        obj = RestrictedUnpickler(io.BytesIO(data), source=source,
                                  extra_allowed=extra_allowed).load()
    except EmoteInputError:
        raise
    except Exception as exc:  # truncated or garbled pickles raise many different types
        raise EmoteInputError(
            "unreadable_file",
            f"Cannot read {source}: it is not a complete pickle file ({type(exc).__name__}: "
            f"{exc}). It may be truncated or of another format; download the FLAME model again "
            "and select its .pkl file.") from None
    return to_plain(obj) if plain else obj


def safe_load(path: str | Path, extra_allowed: Mapping[str, Any] | None = None,
              plain: bool = True) -> Any:
    """Read a pickle file safely. `extra_allowed` maps "module.name" to the object to hand out."""
    path = Path(path)
    if not path.is_file():
        raise EmoteInputError("missing_file", f"File not found: {path}. Check the path.")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise EmoteInputError("unreadable_file", f"Cannot read {path}: {exc}.") from None
    return safe_loads(data, extra_allowed=extra_allowed, source=str(path.name), plain=plain)


def to_plain(obj: Any) -> Any:
    """Replace chumpy and sparse stand-ins (also inside dicts, lists, tuples) by numpy arrays."""
    if isinstance(obj, ChumpyRecord):
        return chumpy_to_array(obj)
    if isinstance(obj, SparseRecord):
        return sparse_to_dense(obj)
    if isinstance(obj, dict):
        return {k: to_plain(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [to_plain(v) for v in obj]
    if isinstance(obj, tuple):
        return tuple(to_plain(v) for v in obj)
    return obj


def chumpy_to_array(rec: ChumpyRecord) -> np.ndarray:
    """Value of a chumpy object: `Ch` keeps it in `x`; a few reshaping operators are evaluated."""
    state = rec.state_dict()
    op = rec.source.rsplit(".", 1)[-1]
    val = lambda key: np.asarray(to_plain(state[key]))  # noqa: E731
    try:
        if "x" in state:
            return val("x")
        if op == "transpose":
            return np.transpose(val("a"), state.get("axes"))
        if op == "Reshape":
            return np.reshape(val("a"), state["newshape"])
        if op == "Select":
            out = val("a").ravel()[np.asarray(state["idxs"]).ravel()]
            shape = state.get("preferred_shape")
            return out.reshape(shape) if shape is not None else out
        if op in ("add", "subtract", "multiply"):
            return getattr(np, op)(val("a"), val("b"))
    except (KeyError, ValueError, TypeError, IndexError):
        pass
    raise EmoteInputError(
        "unsupported_format",
        f"The file holds a chumpy object {rec.source} whose value cannot be read without chumpy "
        "(fields: " + ", ".join(sorted(map(str, state))) + "). Use the original FLAME .pkl "
        "release, whose arrays are plain chumpy Ch objects.")


def sparse_to_dense(rec: SparseRecord) -> np.ndarray:
    """Dense numpy array from a pickled scipy csc/csr/coo matrix's state (scipy not needed)."""
    st = rec.state_dict()
    fmt = rec.source.rsplit(".", 1)[-1][:3]
    try:
        shape = tuple(int(n) for n in st.get("_shape", st.get("shape")))
        data = np.asarray(st["data"])
        out = np.zeros(shape, dtype=data.dtype if data.size else np.float64)
        if fmt == "coo":
            rows, cols = st["coords"] if "coords" in st else (st["row"], st["col"])
            np.add.at(out, (np.asarray(rows, np.int64), np.asarray(cols, np.int64)), data)
            return out
        indices = np.asarray(st["indices"], dtype=np.int64)
        indptr = np.asarray(st["indptr"], dtype=np.int64)
        major = out.shape[1] if fmt == "csc" else out.shape[0]
        if len(indptr) != major + 1 or indptr[-1] > len(indices) or len(indices) != len(data):
            raise ValueError("index arrays do not fit the shape")
        owner = np.repeat(np.arange(major), np.diff(indptr))
        n = len(owner)
        rows, cols = (indices[:n], owner) if fmt == "csc" else (owner, indices[:n])
        np.add.at(out, (rows, cols), data[:n])
        return out
    except (KeyError, TypeError, ValueError, IndexError) as exc:
        raise EmoteInputError(
            "unsupported_format",
            f"The sparse matrix {rec.source} in the file is damaged ({exc}). Download the FLAME "
            "model again.") from None
