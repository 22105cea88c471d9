"""The head's own channel mapping: rows of (model channel, shape key, gain, offset), presets.

Plain Python (no bpy). A head object keeps its rows (addon_ui.properties, `obj.emote.mapping`);
`apply_mapping` lays them over the name matching of `channels.match_channels` when a take is
baked: a channel that has a row goes only where its rows say (an empty target leaves it idle and
listed), a key that is a row's target is driven only by its rows, and every other channel and key
is matched by name as before. A key's value is the sum over its rows of gain * channel + offset,
so weighted mixes (a VRM viseme from two ARKit channels) are rows too.

Built-in presets are derived from `rig_names` and the ARKit list, never typed out twice; user
presets are JSON files (`save_preset` / `load_preset`).
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass
from pathlib import Path

from . import channels, rig_names
from ..model_runtime.errors import EmoteInputError
from ..model_runtime.heads.arkit_channels import ARKIT_BLENDSHAPES

FORMAT = "emote_mapping"  # the JSON files' marker key; its value is the format version
FORMAT_VERSION = 1
JAW_CHANNEL = "jaw"  # a row's channel for the jaw rotation turned into a jawOpen value
N_FLAME_EXPRESSIONS = 100


@dataclass(frozen=True)
class MappingRow:
    """One model channel driving one shape key: value = gain * channel + offset."""

    channel: str
    target: str  # shape key name; "" leaves the channel idle
    gain: float = 1.0
    offset: float = 0.0


# --- built-in presets -------------------------------------------------------------------------

def _cc4_spelling(arkit: str) -> str:
    """Character Creator 4's spelling of an ARKit name: mouthSmileLeft -> Mouth_Smile_L."""
    words = re.findall(r"[a-z]+|[A-Z][a-z]*", arkit)
    side = {"Left": "L", "Right": "R"}.get(words[-1])
    if side:
        words[-1] = side
    return "_".join(w[:1].upper() + w[1:] for w in words)


def _arkit_rows() -> list[MappingRow]:
    return [MappingRow(n, n) for n in ARKIT_BLENDSHAPES]


def _cc4_rows() -> list[MappingRow]:
    """Each ARKit channel onto its CC4 key(s): the differing names of rig_names.CC4_ALIASES
    (several keys where CC4 splits a shape), else the CC4 spelling of the ARKit name."""
    by_channel: dict[str, list[str]] = {}
    for key, arkit in rig_names.CC4_ALIASES.items():
        by_channel.setdefault(arkit, []).append(key)
    return [MappingRow(n, k) for n in ARKIT_BLENDSHAPES
            for k in by_channel.get(n, [_cc4_spelling(n)])]


def _mix_rows(presets: dict) -> list[MappingRow]:
    """Rows of weighted presets (VRM visemes and expressions): one row per source channel."""
    return [MappingRow(src, key, float(w)) for key, mix in presets.items() for src, w in mix]


def _flame_rows() -> list[MappingRow]:
    """FLAME's expression columns onto the keys Add FLAME head makes (exp000 ...)."""
    return [MappingRow(f"exp{i}", f"exp{i:03d}") for i in range(N_FLAME_EXPRESSIONS)]


BUILTIN_PRESETS = {  # name -> (description, rows maker)
    "ARKit": ("The 52 ARKit shapes in Apple's spelling (Face Cap, Live Link Face)", _arkit_rows),
    "CC4": ("Character Creator 4 extended facial profile (Mouth_Smile_L ...)", _cc4_rows),
    "VRM 0.x": ("VRM 0.x presets: A I U E O, blinks, Joy, Angry, Sorrow, Fun, Surprised",
                lambda: _mix_rows(rig_names.VRM0_PRESETS)),
    "VRM 1.0": ("VRM 1.0 expressions: aa ih ou ee oh, blinks, happy, angry, sad, relaxed",
                lambda: _mix_rows(rig_names.VRM1_PRESETS)),
    "Ready Player Me": ("ARKit shapes plus Ready Player Me's visemes and summary keys",
                        lambda: _arkit_rows() + _mix_rows(rig_names.RPM_PRESETS)),
    "FLAME": ("FLAME's 100 expression columns onto keys exp000 .. exp099", _flame_rows),
}


def builtin_preset(name: str) -> list[MappingRow]:
    if name not in BUILTIN_PRESETS:
        raise EmoteInputError("bad_request", f"No built-in mapping preset {name!r}; there are "
                              + ", ".join(BUILTIN_PRESETS) + ".")
    return BUILTIN_PRESETS[name][1]()


# --- JSON files -------------------------------------------------------------------------------

def preset_json(rows: list[MappingRow], name: str = "") -> str:
    return json.dumps({FORMAT: FORMAT_VERSION, "name": name,
                       "rows": [asdict(r) for r in rows]}, indent=1)


def save_preset(path: str | Path, rows: list[MappingRow], name: str = "") -> Path:
    """Write rows as a preset file (the folder must exist)."""
    path = Path(path)
    path.write_text(preset_json(rows, name or path.stem) + "\n", "utf-8")
    return path


def rows_from_data(data, where: str = "the preset") -> list[MappingRow]:
    """Rows from a parsed preset; EmoteInputError naming the first bad entry."""
    if not isinstance(data, dict) or FORMAT not in data or not isinstance(data.get("rows"), list):
        raise EmoteInputError("bad_request", f"{where} is not an EMOTE mapping preset (a JSON "
                              f"object with \"{FORMAT}\": {FORMAT_VERSION} and a \"rows\" list). "
                              "Save one from the panel's Mapping box to see the format.")
    if data[FORMAT] != FORMAT_VERSION:
        raise EmoteInputError("bad_request", f"{where} is mapping format {data[FORMAT]!r}; this "
                              f"version of EMOTE reads format {FORMAT_VERSION}.")
    rows = []
    for i, r in enumerate(data["rows"]):
        try:
            if not isinstance(r.get("channel"), str) or not r["channel"].strip():
                raise ValueError("no channel name")
            rows.append(MappingRow(r["channel"].strip(), str(r.get("target", "")),
                                   float(r.get("gain", 1.0)), float(r.get("offset", 0.0))))
        except (AttributeError, TypeError, ValueError) as exc:
            raise EmoteInputError("bad_request", f"{where}: row {i + 1} ({r!r}) is not "
                                  "{channel, target, gain, offset}: " + str(exc)
                                  + ". Fix or remove that row.") from None
    return rows


def load_preset(path: str | Path) -> list[MappingRow]:
    path = Path(path)
    try:
        data = json.loads(path.read_text("utf-8"))
    except FileNotFoundError:
        raise EmoteInputError("missing_file", f"Mapping preset not found: {path}.") from None
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise EmoteInputError("bad_request", f"{path.name} is not a readable JSON file ({exc})."
                              " Choose a preset saved by EMOTE.") from None
    return rows_from_data(data, path.name)


# --- the rows in a bake -----------------------------------------------------------------------

def _source(canon: str, columns: dict[str, int], has_jaw_bone: bool) -> int | None:
    """The result column a row's channel reads: the jaw (channels.JAW) for `jaw`, and for
    jawOpen on a rig without a jaw bone, as name matching does."""
    if canon == JAW_CHANNEL or (canon == "jawOpen" and not has_jaw_bone):
        return channels.JAW
    return columns.get(canon)


def apply_mapping(cmap: channels.ChannelMap, rows: list[MappingRow], exp_names: list[str],
                  key_names: list[str]) -> channels.ChannelMap:
    """`cmap` (name matching of `exp_names` onto keys `key_names`) with the rows laid over it.

    Rows whose channel the model lacks are left out (listed in `mapping_notes`), as are rows
    whose target is not a shape key of this head (their channel is idle and listed)."""
    columns: dict[str, int] = {}
    for i, n in enumerate(exp_names):
        columns.setdefault(channels.canonical(n), i)
    keys = set(key_names)
    mapped: set[int] = set()
    wanted: list[tuple[int, MappingRow]] = []
    absent, missing = [], []
    for r in rows:
        col = _source(channels.canonical(r.channel), columns, cmap.jaw_bone is not None)
        if col is None:
            absent.append(r.channel)
            continue
        mapped.add(col)
        if r.target and r.target in keys:
            wanted.append((col, r))
        elif r.target:
            missing.append(r.target)
    targets = {r.target for _c, r in wanted}
    out = channels.ChannelMap(jaw_bone=cmap.jaw_bone, retarget=cmap.retarget,
                              unknown_keys=[k for k in cmap.unknown_keys if k not in targets])
    out.shape_keys = {c: k for c, k in cmap.shape_keys.items()
                      if c not in mapped and k not in targets}
    if cmap.jaw_open_key and channels.JAW not in mapped and cmap.jaw_open_key not in targets:
        out.jaw_open_key = cmap.jaw_open_key
    for k, terms in cmap.mixes.items():
        kept = [(c, w) for c, w in terms if c not in mapped]
        if kept and k not in targets:
            out.mixes[k] = kept
    for col, r in wanted:
        out.mixes.setdefault(r.target, []).append((col, float(r.gain)))
        if r.offset:
            out.offsets[r.target] = out.offsets.get(r.target, 0.0) + float(r.offset)
    used = set(out.shape_keys) | {c for terms in out.mixes.values() for c, _w in terms}
    if out.jaw_open_key:
        used.add(channels.JAW)
    out.unmatched = [n for i, n in enumerate(exp_names) if i not in used]
    if out.jaw_bone is None and channels.JAW not in used:
        out.unmatched.append(JAW_CHANNEL)
    out.idle_keys = sorted((set(cmap.idle_keys) | set(cmap.shape_keys.values())
                            | set(cmap.mixes) | {cmap.jaw_open_key} - {None})
                           - set(out.shape_keys.values()) - set(out.mixes)
                           - {out.jaw_open_key})
    if absent:
        out.mapping_notes.append(f"{len(absent)} mapping rows name channels this model lacks ("
                                 + ", ".join(absent[:6]) + (" ..." if len(absent) > 6 else "")
                                 + ")")
    if missing:
        out.mapping_notes.append("mapping targets not on this head: " + ", ".join(missing[:8])
                                 + (" ..." if len(missing) > 8 else ""))
    return out


def rows_from_map(cmap: channels.ChannelMap, exp_names: list[str]) -> list[MappingRow]:
    """Rows that reproduce `cmap` exactly (the panel's Fill from head), in channel order; a
    channel without a target gets a row with an empty target."""
    def name(col: int) -> str:
        return JAW_CHANNEL if col == channels.JAW else exp_names[col]

    by_col: dict[int, list[MappingRow]] = {}
    for col, k in cmap.shape_keys.items():
        by_col.setdefault(col, []).append(MappingRow(name(col), k))
    if cmap.jaw_open_key:
        by_col.setdefault(channels.JAW, []).append(MappingRow(JAW_CHANNEL, cmap.jaw_open_key))
    for k, terms in cmap.mixes.items():
        for col, w in terms:
            by_col.setdefault(col, []).append(MappingRow(name(col), k, float(w)))
    rows: list[MappingRow] = []
    for col in list(range(len(exp_names))) + [channels.JAW]:
        if (col != channels.JAW and cmap.jaw_bone is None
                and channels.canonical(exp_names[col]) == "jawOpen"):
            continue  # without a jaw bone the jaw row stands for jawOpen (see _source)
        rows += by_col.get(col, [])
        if col not in by_col and (col != channels.JAW or cmap.jaw_bone is None):
            rows.append(MappingRow(name(col), ""))
    return rows
