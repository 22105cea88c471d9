"""Which model output drives which part of a rig: shape keys by name, the jaw to a bone or key.

Plain Python. Names match loosely so FLAME heads (`exp000`, `exp_0`) and characters from other
pipelines are driven without renaming: ARKit's 52 names in Apple's spelling or with `_L/_R`,
`.L/.R`, `_l/_r`, `L`/`R` or `Left/Right` sides, any case, behind mesh or namespace prefixes
(`Face.`, `blendShape1.`, `Head:`, `Genesis8Female__`, `CC_Base_`), Character Creator 4 names, and
VRM / VRoid / Ready Player Me shapes that are weighted mixes of ARKit channels (`rig_names`).
Shape keys that match nothing are left alone and listed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import NamedTuple

from . import rig_names
from ..model_runtime.heads.arkit_channels import ARKIT_BLENDSHAPES

_EXP = re.compile(r"^(?:flame)?exp(?:ression)?0*(\d+)$")
_SIDE_SUFFIX = re.compile(r"(?:[_.\- ]([lrLR])|(?<=[a-z])([LR]))$")
_SIDE_PREFIX = re.compile(r"^([lrLR])[_.\- ](?=\w)")
# Where a mesh or namespace prefix ends: "Face.", "blendShape1.", "Head:", "A|B", "Genesis8_1__".
_PREFIX_END = re.compile(r"[.:|]|__")

JAW = -1  # source column of a mix term fed from the jaw rotation (jawOpen = jaw_to_open(jaw))


def normalise(name: str) -> str:
    """Canonical form of a channel name for matching: lower case, no separators, sides spelt
    `left`/`right` at the end, FLAME expression columns as `exp<n>`."""
    n = name.strip()
    m = _SIDE_PREFIX.match(n)
    if m:  # "L_eyeBlink" -> "eyeBlink_L"
        n = n[m.end():] + "_" + m.group(1)
    m = _SIDE_SUFFIX.search(n)
    if m:  # mouthSmile_L / mouthSmile.l / mouthSmileL -> mouthSmileLeft
        side = (m.group(1) or m.group(2)).lower()
        n = n[:m.start()] + ("left" if side == "l" else "right")
    n = re.sub(r"[^0-9a-z]", "", n.lower())
    m = _EXP.match(n)
    if m:
        return f"exp{int(m.group(1))}"
    return n


class KeyRole(NamedTuple):
    """What a recognised shape key shows: weighted ARKit (or FLAME `exp<n>`) sources."""

    sources: tuple[tuple[str, float], ...]
    preset: bool  # a weighted stand-in, driven only when its sources have no key of their own


_ARKIT = {normalise(n): n for n in ARKIT_BLENDSHAPES}
_ROLES: dict[str, KeyRole] = {k: KeyRole(((n, 1.0),), False) for k, n in _ARKIT.items()}
_ROLES.update({normalise(k): KeyRole(((n, 1.0),), False) for k, n in rig_names.ALIASES.items()})
_ROLES.update({normalise(k): KeyRole(tuple(mix), True) for k, mix in rig_names.PRESETS.items()})


def _candidates(name: str) -> list[str]:
    """The name, then the name with ever more of its leading prefixes removed."""
    out = [name]
    if name.lower().startswith(rig_names.WHOLE_NAME_PREFIXES):
        return out
    for m in _PREFIX_END.finditer(name):
        rest = name[m.end():]
        if rest:
            out.append(rest)
            if rest.lower().startswith(rig_names.WHOLE_NAME_PREFIXES):
                break
    for cand in list(out):
        low = cand.lower()
        for pre in rig_names.PIPELINE_PREFIXES:
            if low.startswith(pre):
                rest = cand[len(pre):]
                out.append(rest)
                if "_" in rest:  # CC_Base_Body_Mouth_Smile_L: the mesh part too
                    out.append(rest.split("_", 1)[1])
    return out


def identify(name: str) -> KeyRole | None:
    """The role of a shape key or model channel named `name`, or None when it is not known."""
    for cand in _candidates(name):
        n = normalise(cand)
        if n in _ROLES:
            return _ROLES[n]
        if _EXP.match(n):
            return KeyRole(((n, 1.0),), False)
    return None


def canonical(name: str) -> str:
    """One spelling per channel: ARKit names in Apple's spelling, FLAME columns as `exp<n>`, any
    other name normalised (so unknown names still match their own kind)."""
    role = identify(name)
    if role is not None and not role.preset and len(role.sources) == 1:
        return role.sources[0][0]
    return normalise(name)


@dataclass
class ChannelMap:
    """How a result's channels land on a rig.

    `shape_keys` holds the one-to-one targets; `mixes` (newer) the keys whose value is a weighted
    sum of result columns (`JAW` = jawOpen from the jaw rotation): a channel's second key (CC4
    quarters) and the VRM/Ready Player Me presets. Code that knows only `shape_keys` still works.
    """

    shape_keys: dict[int, str] = field(default_factory=dict)  # exp column -> shape key name
    jaw_bone: str | None = None  # pose bone that receives the jaw rotation
    jaw_open_key: str | None = None  # ARKit key fed from the jaw when there is no bone
    unmatched: list[str] = field(default_factory=list)  # model channels with no target
    mixes: dict[str, list[tuple[int, float]]] = field(default_factory=dict)  # key -> terms
    unknown_keys: list[str] = field(default_factory=list)  # shape keys no convention names
    idle_keys: list[str] = field(default_factory=list)  # known keys this model cannot drive
    retarget: str = ""  # how the result was carried onto this head's basis, or why it was not
    offsets: dict[str, float] = field(default_factory=dict)  # key -> added to its mix (mapping)
    mapping_notes: list[str] = field(default_factory=list)  # what the head's mapping left out


def match_channels(exp_names: list[str], shape_key_names: list[str], bone_names: list[str],
                   jaw_open_full_rad: float = 0.45) -> ChannelMap:
    """Map model channels onto a rig's shape keys and bones; list what found no target.

    The jaw rotation goes to a bone named like "jaw" when there is one, else to the rig's
    jawOpen key (whose model channel then stays unused). Every other key is driven from the model
    columns its role names; presets only when none of their sources drives a key directly (a jaw
    bone or jawOpen key counts as driving jawOpen, so VRM's `A` stays idle on a rig with a jaw).
    """
    cmap = ChannelMap()
    jaw = [b for b in bone_names if b.lower() == "jaw"] or [b for b in bone_names
                                                             if "jaw" in b.lower()]
    cmap.jaw_bone = jaw[0] if jaw else None
    columns: dict[str, int] = {}
    for i, name in enumerate(exp_names):
        columns.setdefault(canonical(name), i)

    roles: dict[str, KeyRole] = {}
    for k in shape_key_names:
        role = identify(k)
        if role is None and normalise(k) in columns:  # same odd name on both sides
            role = KeyRole(((normalise(k), 1.0),), False)
        if role is None:
            cmap.unknown_keys.append(k)
        else:
            roles[k] = role
    direct = [k for k, r in roles.items() if not r.preset]
    if cmap.jaw_bone is None:
        cmap.jaw_open_key = next((k for k in direct if roles[k].sources == (("jawOpen", 1.0),)),
                                 None)

    def source(name: str) -> int | None:
        if name == "jawOpen" and cmap.jaw_bone is None:
            return JAW
        return columns.get(name)

    used: set[int] = set()
    covered: set[str] = set()  # sources that drive a key of their own
    if cmap.jaw_bone is not None or cmap.jaw_open_key is not None:
        covered.add("jawOpen")
    for k in direct:
        if k == cmap.jaw_open_key:
            continue
        terms = [(source(s), w) for s, w in roles[k].sources if source(s) is not None]
        if not terms:
            cmap.idle_keys.append(k)
            continue
        covered.update(s for s, _w in roles[k].sources)
        col, w = terms[0]
        if len(terms) == 1 and w == 1.0 and col != JAW and col not in cmap.shape_keys:
            cmap.shape_keys[col] = k
        else:
            cmap.mixes[k] = terms
        used.update(c for c, _w in terms)
    # A two-sided preset (Blink) is the sum of one-sided ones (Blink_L, Blink_R): when the rig
    # has those, driving it as well would close the eyes twice.
    one_sided = {r.sources[0][0] for r in roles.values() if r.preset and len(r.sources) == 1}
    for k, role in roles.items():
        if not role.preset:
            continue
        terms = [(source(s), w) for s, w in role.sources if source(s) is not None]
        if (not terms or any(s in covered for s, _w in role.sources)
                or len(role.sources) > 1 and all(s in one_sided for s, _w in role.sources)):
            cmap.idle_keys.append(k)
            continue
        cmap.mixes[k] = terms
        used.update(c for c, _w in terms)

    cmap.unmatched = [n for i, n in enumerate(exp_names) if i not in used]
    if cmap.jaw_bone is None and cmap.jaw_open_key is None and JAW not in used:
        cmap.unmatched.append("jaw")
    return cmap


def mix_values(terms: list[tuple[int, float]], exp, jaw_open):
    """A mixed key's values (T,): the weighted sum of result columns, `JAW` meaning `jaw_open`."""
    import numpy as np

    out = np.zeros(len(jaw_open), dtype=np.float64)
    for col, w in terms:
        out += w * (np.asarray(jaw_open, dtype=np.float64) if col == JAW
                    else np.asarray(exp[:, col], dtype=np.float64))
    return out


def key_values(cmap: ChannelMap, exp, jaw_open) -> list[tuple[str, object]]:
    """(shape key, values (T,)) of every key `cmap` drives: one-to-one keys, the jawOpen key,
    then the mixes (plus their mapping offsets). The one list bake and re-bake both write."""
    out: list[tuple[str, object]] = [(k, exp[:, col]) for col, k in cmap.shape_keys.items()]
    if cmap.jaw_open_key:
        out.append((cmap.jaw_open_key, jaw_open))
    offsets = getattr(cmap, "offsets", {})
    for k, terms in cmap.mixes.items():
        out.append((k, mix_values(terms, exp, jaw_open) + offsets.get(k, 0.0)))
    return out


def jaw_to_open(jaw_x, full_rad: float = 0.45):
    """jawOpen key value for a jaw rotation about +x (radians): clamp(x / full, 0, 1)."""
    import numpy as np

    return np.clip(np.asarray(jaw_x, dtype=np.float64) / full_rad, 0.0, 1.0)
