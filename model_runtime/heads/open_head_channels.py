"""The open head's expression channels: the channel table (open_head_tables.LEFT_CHANNELS) applied
to the skin, then carried to the mouth bag, kept out of the eyeballs and mirrored to the `_R` side.
"""

from __future__ import annotations

import numpy as np

from .arkit_channels import OPEN_HEAD_CHANNELS, mirror_name
from .open_head_geometry import gauss, smoothstep
from .open_head_skin import (Skin, eye_angles, rest_gap,
                                                rotate_about_eye)
from .open_head_tables import (LEFT_CHANNELS, REGIONS, Channel, Corner, G,
                                                  Mix, Move, OpenHeadParams, Ramp, Spot, Turn)


def channel_fields(skin: Skin, p: OpenHeadParams, xc: float, Y: np.ndarray,
                   U: np.ndarray) -> dict:
    """The per-vertex fields the channel table names (listed in open_head_tables)."""
    Q = skin.pos
    x, y, z = Q[:, 0], Q[:, 1], Q[:, 2]
    F = {"Q": Q, "x": x, "y": y, "z": z, "ax": np.abs(x), "Y": Y, "U": U, "L": 1 - U,
         "U_minus_L": U - (1 - U), "front": smoothstep(0.0, 0.03, z), "sign_x": np.sign(x),
         "x_over_xc": x / xc, "below_line": np.maximum(-Y, 0), "above_line": np.maximum(Y, 0),
         "corner": Q[skin.below[skin.i_mouth, skin.mouth_cols[1]]]}
    slit = (skin.row == skin.i_mouth) & (skin.side != 0)
    F["slit_gap"] = np.where(slit, skin.side * 0.5 * rest_gap(x, xc, p), 0.0)
    F["upper_lip"] = U * gauss(Y ** 2, 0.005) * gauss(x ** 2, 0.8 * xc)
    F["lower_lip"] = (1 - U) * gauss(Y ** 2, 0.006) * gauss(x ** 2, 0.8 * xc)
    F["lips"] = F["upper_lip"] + F["lower_lip"]
    for name, factors in REGIONS:
        F[name] = product(factors, F)
    out = np.stack([x, np.zeros_like(x), np.maximum(z - 0.02, 0.0)], 1)
    out /= np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-9)
    F["out"] = out
    # the left eye's lids: almond profile, upper and lower falloffs, the lower lid's first rows
    gl, fu, fl = eye_angles(skin, p, right=False)
    F["lid_shape"], F["lid_upper"], F["lid_lower"] = gl, fu, fl
    F["lid_lower_near"] = np.where(fl > 0, np.clip(1.0 + (skin.row - skin.i_eye) / 5.0, 0, 1), 0.0)
    F["lid"] = (gl > 0) & ((fu > 0) | (fl > 0))
    blink = np.zeros_like(Q)
    blink[F["lid"]] = skin.closed[F["lid"]] - Q[F["lid"]]
    F["blink"] = blink
    return F


def factor(f, F: dict):
    """The value of one factor of the channel table (a number, a field name, a falloff...)."""
    if isinstance(f, G):
        return gauss((F[f.field] - f.at) ** 2, f.sigma)
    if isinstance(f, Spot):
        return gauss((F["x"] - f.x) ** 2 + (F["y"] - f.y) ** 2, f.sigma)
    if isinstance(f, Corner):
        return gauss(((F["Q"] - F["corner"] - np.asarray(f.offset)) ** 2).sum(1), f.sigma)
    if isinstance(f, Ramp):
        return smoothstep(f.e0, f.e1, F[f.field])
    if isinstance(f, Mix):
        total = product(f.terms[0], F)
        for term in f.terms[1:]:
            total = total + product(term, F)
        return total
    if isinstance(f, tuple):
        return product(f, F)
    if isinstance(f, str):
        return F[f]
    return f  # a number


def product(factors: tuple, F: dict):
    """The factors multiplied left to right (the order the arithmetic was written in)."""
    value = factor(factors[0], F)
    for f in factors[1:]:
        value = value * factor(f, F)
    return value


def apply_channel(row: Channel, F: dict, p: OpenHeadParams) -> np.ndarray:
    """Displacement field (Vs, 3) of one row of the channel table.

    A whole-vector first term is the field itself rather than added to zeros, so the field is
    the same to the bit (signed zeros included) as the arithmetic it was written as."""
    Q = F["Q"]
    d = None
    for term in row.terms:
        if isinstance(term, Move) and isinstance(term.along, int):
            d = np.zeros_like(Q) if d is None else d
            d[:, term.along] += product(term.factors, F)
            continue
        if isinstance(term, Turn):
            theta, lid = product(term.factors, F), F["lid"]
            part = np.zeros_like(Q)
            part[lid] = rotate_about_eye(Q[lid], theta[lid], p, False) - Q[lid]
        elif isinstance(term, Move):
            direction = F[term.along] if isinstance(term.along, str) else np.asarray(term.along)
            part = product(term.factors, F)[:, None] * direction if term.factors else direction
        else:
            raise TypeError(f"unknown channel term {term!r}")
        d = part.copy() if d is None else d + part
    return d


def channels_left(skin: Skin, p: OpenHeadParams, xc: float, Y: np.ndarray, U: np.ndarray) -> dict:
    """Displacement fields (Vs, 3) of the symmetric channels and the subject's-left ones."""
    F = channel_fields(skin, p, xc, Y, U)
    return {row.name: apply_channel(row, F, p) for row in LEFT_CHANNELS}


def clamp_eye_radial(d: np.ndarray, pos: np.ndarray, p: OpenHeadParams) -> np.ndarray:
    """Remove offsets that point into an eyeball from skin near the eyes (no lid through the eye)."""
    d = d.copy()
    for sgn in (1.0, -1.0):
        ec = np.asarray(p.eye_centre) * [sgn, 1, 1]
        v = pos - ec
        rho = np.linalg.norm(v, axis=1)
        rh = v / rho[:, None]
        t = 1.0 - smoothstep(0.016, 0.020, rho)
        a = np.einsum("ij,ij->i", d, rh)
        d -= (t * np.minimum(a, 0.0))[:, None] * rh
    return d


def expression_dirs(ch_left: dict, v: np.ndarray, n_skin: int, n_bag0: int, loop: np.ndarray,
                    mirror: np.ndarray, p: OpenHeadParams, followers=None) -> np.ndarray:
    """(V, 3, E) expression directions in OPEN_HEAD_CHANNELS order: the skin's channel fields,
    followed by the first two mouth-bag rings and by `followers` (vertex indices (n,), the skin
    vertices each follows (n, k) and the weights of their offsets it takes (n, k): the lid rims
    scale one margin vertex's, the brows mix three), kept out of the
    eyeballs, and mirrored for the `_R` channels (symmetric channels made exactly symmetric)."""
    nv = len(v)
    exp = np.zeros((nv, 3, len(OPEN_HEAD_CHANNELS)))
    n_loop = len(loop)
    for e_i, name in enumerate(OPEN_HEAD_CHANNELS):
        src = name if name in ch_left else mirror_name(name)
        d = np.zeros((nv, 3))
        d[:n_skin] = ch_left[src]
        d[n_bag0:n_bag0 + n_loop] = 0.5 * d[loop]  # first bag ring follows the lip edge
        d[n_bag0 + n_loop:n_bag0 + 2 * n_loop] = 0.2 * d[loop]
        if followers is not None:
            idx, leaders, weights = followers
            d[idx] = np.einsum("nk,nkc->nc", weights, d[leaders])
        if not src.startswith("eyeBlink"):
            d = clamp_eye_radial(d, v, p)
        mirrored = d[mirror] * [-1.0, 1.0, 1.0]
        if src != name:
            d = mirrored
        elif mirror_name(name) == name:
            d = 0.5 * (d + mirrored)
        exp[:, :, e_i] = d
    return exp
