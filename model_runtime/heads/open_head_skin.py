"""The open head's skin: one latitude/longitude grid cast onto the implicit shape, with a slit
for the mouth and one for each eye, and the per-vertex frames the channels are drawn in (lid
weights, height above the mouth line, upperness).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .open_head_geometry import cast, rot_x, segments, smoothstep
from .open_head_tables import DEG, OpenHeadParams


@dataclass
class Skin:
    """Skin grid bookkeeping: positions, vertex indices and which row/column each vertex sits on."""

    pos: np.ndarray  # (Vs, 3) rest positions
    closed: np.ndarray  # (Vs, 3) positions with the lids closed and the lips touching
    row: np.ndarray  # (Vs,) grid row (pole: n_rows)
    col: np.ndarray  # (Vs,) grid column (pole: -1)
    side: np.ndarray  # (Vs,) +1 upper copy of a slit vertex, -1 lower copy, 0 otherwise
    faces: list
    u: np.ndarray  # column longitudes (rad)
    e: np.ndarray  # row latitudes (rad)
    i_mouth: int
    i_eye: int
    mouth_cols: tuple  # (first corner column, last corner column)
    eye_cols: tuple  # left eye (first corner column, last corner column)
    below: np.ndarray  # (rows, cols) index used by faces below the row
    above: np.ndarray  # (rows, cols) index used by faces above the row
    pole: int


def _grid_angles(p: OpenHeadParams):
    pos = segments(0.0, p.cols)[1:]  # (0, 180]
    u = np.concatenate([-pos[::-1], [0.0], pos[:-1]]) * DEG  # -180 .. < 180
    e = np.concatenate([np.linspace(a, b, n)[(0 if k == 0 else 1):]
                        for k, (a, b, n) in enumerate(p.rows)]) * DEG
    c = np.asarray(p.centre)
    e_mouth = np.arctan2(p.mouth_y - c[1], p.mouth_z - c[2])
    ec = np.asarray(p.eye_centre)
    m = p.lid_meet_deg * DEG
    q = ec + p.lid_radius * np.array([0.0, np.sin(m), np.cos(m)])
    e_eye = np.arctan2(q[1] - c[1], np.hypot(q[0] - c[0], q[2] - c[2]))
    i_mouth = int(np.argmin(np.abs(e - e_mouth)))
    i_eye = int(np.argmin(np.abs(e - e_eye)))
    e[i_mouth], e[i_eye] = e_mouth, e_eye
    return u, e, i_mouth, i_eye


def _eye_corner_cols(u, p: OpenHeadParams):
    ec = np.asarray(p.eye_centre)
    out = []
    for a, sgn in ((p.eye_inner_deg, -1.0), (p.eye_outer_deg, 1.0)):
        x = ec[0] + sgn * p.lid_radius * np.sin(a * DEG)
        z = ec[2] + p.lid_radius * np.cos(a * DEG)
        out.append(int(np.argmin(np.abs(u - np.arctan2(x - p.centre[0], z - p.centre[2])))))
    return tuple(out)


def _wrap_lids(pts: np.ndarray, p: OpenHeadParams) -> np.ndarray:
    """Lay the skin around each eye onto the lid sphere, keeping every point outside it."""
    ec = np.asarray(p.eye_centre)
    q = pts.copy()
    sx = np.sign(q[..., 0])
    q[..., 0] = np.abs(q[..., 0])
    v = q - ec
    rho = np.linalg.norm(v, axis=-1)
    d = v / rho[..., None]
    ang = np.arccos(np.clip(d[..., 2], -1, 1))
    s = (1.0 - smoothstep(40 * DEG, 75 * DEG, ang)) * (1.0 - smoothstep(0.016, 0.024, rho))
    r = np.maximum(rho, p.lid_radius)
    r = r + (p.lid_radius - r) * s
    q = ec + d * r[..., None]
    q[..., 0] *= np.where(sx == 0, 1.0, sx)
    return np.where((pts[..., 2] > 0.02)[..., None], q, pts)


def _relax_around_eyes(grid: np.ndarray, p: OpenHeadParams, iterations: int = 12) -> None:
    """Smooth the skin in a ring round each eye socket (Taubin's shrink-free smoothing over grid
    neighbours): rays meet the socket's walls at a slant, and the stepped surface they give
    shades in stairs. The lids inside the ring are laid on their sphere afterwards."""
    ec = np.asarray(p.eye_centre)
    q = grid.copy()
    q[..., 0] = np.abs(q[..., 0])
    rho = np.linalg.norm(q - ec, axis=-1)
    w = (smoothstep(0.0140, 0.0175, rho) * (1.0 - smoothstep(0.026, 0.034, rho))
         * (grid[..., 2] > 0.02))[..., None]
    w[[0, -1]] = 0.0
    for k in range(2 * iterations):
        lam = 0.5 if k % 2 == 0 else -0.53
        nb = 0.25 * (np.roll(grid, 1, axis=1) + np.roll(grid, -1, axis=1)
                     + np.roll(grid, 1, axis=0) + np.roll(grid, -1, axis=0))
        grid += lam * w * (nb - grid)


def _ray_dirs(E: np.ndarray, u: np.ndarray) -> np.ndarray:
    return np.stack([np.cos(E) * np.sin(u)[None], np.sin(E), np.cos(E) * np.cos(u)[None]], axis=-1)


def _neck_rows(E: np.ndarray, u: np.ndarray, p: OpenHeadParams) -> None:
    """Spread the first row segment per column from the latitude whose ray meets the neck exactly
    at the cut up to the segment's top, so the neck is covered evenly down to a clean cut."""
    n0 = p.rows[0][2]
    c = np.asarray(p.centre)
    lo = np.full(len(u), -89.0 * DEG)
    hi = np.full(len(u), p.rows[0][1] * DEG)
    for _ in range(24):  # the cast point's height falls as the latitude falls
        mid = 0.5 * (lo + hi)
        below = cast(_ray_dirs(mid[None], u), c)[0, :, 1] < p.neck_cut_y
        lo = np.where(below, mid, lo)
        hi = np.where(below, hi, mid)
    e_cut = 0.5 * (lo + hi)
    t = np.linspace(0.0, 1.0, n0)[:, None] ** 2  # rays graze the throat: rows close there
    E[:n0] = e_cut[None] + (E[n0 - 1][None] - e_cut[None]) * t


def _flare_collar(grid: np.ndarray, p: OpenHeadParams) -> None:
    """Widen the neck towards the cut: the shoulders' start to the sides, chest and nape front
    and back."""
    t = smoothstep(p.collar_top, p.neck_cut_y, grid[..., 1]) ** 1.6
    axis_z = -0.016
    grid[..., 0] *= 1.0 + p.collar_flare_x * t
    grid[..., 2] = axis_z + (grid[..., 2] - axis_z) * (1.0 + p.collar_flare_z * t)


def _lip_rows(e: np.ndarray, u: np.ndarray, i_m: int, p: OpenHeadParams) -> np.ndarray:
    """Latitude per (row, column): rows near the mouth converge at the corners like lips do."""
    uc = p.mouth_corner_deg * DEG
    au = np.abs(u)
    t = np.where(au < uc, (au / uc) ** 2, 1.0 - smoothstep(uc, uc + 14 * DEG, au))
    k_up = np.arange(len(e)) - i_m
    k = np.abs(k_up)
    # the vermilion rows meet at the corners; the rows beyond them fan out again by lip_rows
    nv = np.where(k_up > 0, p.upper_lip_rows, p.lower_lip_rows)
    h = np.clip((p.lip_rows - k) / np.maximum(p.lip_rows - nv, 1), 0.0, 1.0)
    E = e[i_m] + (e - e[i_m])[:, None] * (1.0 - p.lip_taper * t[None] * h[:, None])
    # Cupid's bow: the upper lip's rows rise towards two peaks either side of a central dip, most
    # at the vermilion border row, fading to nothing by the last lip row and at the corners
    s = au / uc
    bow = (p.bow_peak_deg * np.exp(-((s - 0.24) / 0.14) ** 2)
           - p.bow_dip_deg * np.exp(-(s / 0.10) ** 2)) * DEG * (s < 1.0)
    nb = p.upper_lip_rows
    fade = np.clip((p.lip_rows - k_up) / (p.lip_rows - nb), 0, 1)
    w = np.where(k_up <= 0, 0.0, np.minimum(k_up / nb, fade))
    return E + w[:, None] * bow[None]


def _lip_border_ridges(grid, dirs, i_m: int, xc: float, p: OpenHeadParams) -> None:
    """Raise the vermilion borders (the rows where lip colour meets skin) into a soft white roll."""
    taper = 1.0 - smoothstep(0.75, 1.05, np.abs(grid[i_m, :, 0]) / xc)
    for row, height in ((i_m + p.upper_lip_rows, p.border_ridge), (i_m - p.lower_lip_rows,
                                                                   0.6 * p.border_ridge)):
        for di, f in ((0, 1.0), (-1, 0.35), (1, 0.35)):
            grid[row + di] += dirs[row + di] * (height * f * taper)[:, None]


def build_skin(p: OpenHeadParams) -> Skin:
    u, e, i_m, i_e = _grid_angles(p)
    nr, nc = len(e), len(u)
    c = np.asarray(p.centre)
    E = _lip_rows(e, u, i_m, p)
    _neck_rows(E, u, p)
    dirs = _ray_dirs(E, u)
    grid = cast(dirs, c)
    grid[0, :, 1] = p.neck_cut_y  # clean horizontal cut (the neck is vertical there)
    _flare_collar(grid, p)
    _relax_around_eyes(grid, p)
    grid = _wrap_lids(grid, p)
    pole = cast(np.array([[0.0, 1.0, 0.0]]), c)[0]

    # mouth crease: the slit row and its neighbours sink in along the ray
    xc = abs(grid[i_m, int(np.argmin(np.abs(u - p.mouth_corner_deg * DEG))), 0])
    taper = 1.0 - smoothstep(0.8, 1.3, np.abs(grid[i_m, :, 0]) / xc)
    for di, f in ((0, 1.0), (-1, 0.3), (1, 0.3)):
        depth = p.crease_depth * f * taper * (1.0 - 0.3 * (grid[i_m, :, 0] / xc) ** 2)
        grid[i_m + di] -= dirs[i_m + di] * depth[:, None]
    _lip_border_ridges(grid, dirs, i_m, xc, p)

    jm0 = int(np.argmin(np.abs(u + p.mouth_corner_deg * DEG)))
    jm1 = int(np.argmin(np.abs(u - p.mouth_corner_deg * DEG)))
    je0, je1 = _eye_corner_cols(u, p)
    mid = int(np.argmin(np.abs(u)))  # the right eye's columns mirror the left's about u = 0
    slits = [(i_m, jm0, jm1), (i_e, je0, je1), (i_e, 2 * mid - je1, 2 * mid - je0)]

    idx = np.arange(nr * nc).reshape(nr, nc)
    below, above = idx.copy(), idx.copy()
    pos = [grid.reshape(-1, 3)]
    row = [np.repeat(np.arange(nr), nc)]
    col = [np.tile(np.arange(nc), nr)]
    side = [np.zeros(nr * nc, dtype=int)]
    n = nr * nc
    for (i, j0, j1) in slits:
        js = np.arange(j0 + 1, j1)
        above[i, js] = n + np.arange(len(js))  # the original vertices become lower copies
        pos.append(grid[i, js])
        row.append(np.full(len(js), i))
        col.append(js)
        side.append(np.ones(len(js), dtype=int))
        n += len(js)
    side_arr = np.concatenate(side)
    for (i, j0, j1) in slits:
        side_arr[idx[i, j0 + 1:j1]] = -1
    pos.append(pole[None])
    row.append(np.array([nr]))
    col.append(np.array([-1]))
    side_arr = np.concatenate([side_arr, [0]])
    pole_i = n
    faces = []
    for i in range(nr - 1):
        for j in range(nc):
            j1 = (j + 1) % nc
            a, b = above[i, j], above[i, j1]
            cc, d = below[i + 1, j1], below[i + 1, j]
            faces += [(a, b, cc), (a, cc, d)]
    for j in range(nc):
        faces.append((above[nr - 1, j], above[nr - 1, (j + 1) % nc], pole_i))
    pos = np.concatenate(pos)
    return Skin(pos=pos, closed=pos.copy(), row=np.concatenate(row), col=np.concatenate(col),
                 side=side_arr, faces=faces, u=u, e=e, i_mouth=i_m, i_eye=i_e,
                 mouth_cols=(jm0, jm1), eye_cols=(je0, je1), below=below, above=above,
                 pole=pole_i)


def eye_angles(skin: Skin, p: OpenHeadParams, right: bool):
    """Per-vertex lid weights of one eye: almond profile g, upper falloff fu, lower falloff fl."""
    je0, je1 = skin.eye_cols
    u = skin.u
    j = skin.col
    nc = len(u)
    mid = int(np.argmin(np.abs(u)))
    jj = np.where(j >= 0, 2 * mid - j, -1) if right else j  # evaluate as the left eye
    uu = np.where(jj >= 0, u[np.clip(jj, 0, nc - 1)], 0.0)
    t = (uu - u[je0]) / (u[je1] - u[je0])
    g = np.where((t > 0) & (t < 1) & (jj >= 0), np.sin(np.pi * np.clip(t, 0, 1)) ** 0.75, 0.0)
    k = skin.row - skin.i_eye
    up = (k > 0) | ((k == 0) & (skin.side == 1))
    lo = (k < 0) | ((k == 0) & (skin.side == -1))
    fu = np.where(up, np.clip(1.0 - k / p.lid_rows_upper, 0, 1), 0.0)
    fl = np.where(lo, np.clip(1.0 + k / p.lid_rows_lower, 0, 1), 0.0)
    return g, fu, fl


def rotate_about_eye(pts, theta, p: OpenHeadParams, right: bool):
    ec = np.asarray(p.eye_centre) * np.array([-1.0 if right else 1.0, 1.0, 1.0])
    return ec + rot_x(pts - ec, theta)


def _crease_lids(skin: Skin, g: np.ndarray, up: np.ndarray, p: OpenHeadParams, right: bool) -> None:
    """Upper lid crease and the fold above it: radial offsets by row above the margin (a rotation
    about the eye centre keeps them, so the lid opens and blinks with its crease)."""
    k = skin.row - skin.i_eye
    offset = np.zeros(len(k))
    for row, dr in enumerate(p.lid_crease, start=1):
        offset[k == row] = dr
    sel = up & (g > 0) & (offset != 0)
    ec = np.asarray(p.eye_centre) * np.array([-1.0 if right else 1.0, 1.0, 1.0])
    rel = skin.closed[sel] - ec
    rho = np.linalg.norm(rel, axis=1, keepdims=True)
    skin.closed[sel] = ec + rel * (1.0 + (g[sel] * offset[sel])[:, None] / rho)


def open_eyes(skin: Skin, p: OpenHeadParams) -> None:
    """Rest pose: crease the upper lids, then rotate the lids from closed (slit) to open."""
    for right in (False, True):
        g, fu, fl = eye_angles(skin, p, right)
        _crease_lids(skin, g, fu > 0, p, right)
        th = g * (p.lid_upper_open_deg * fu - p.lid_lower_open_deg * fl) * DEG
        sel = th != 0
        skin.pos[sel] = rotate_about_eye(skin.closed[sel], th[sel], p, right)


def mouth_frame(skin: Skin):
    """Mouth line per column, corner x and for every skin vertex Y = height above the mouth line."""
    jm0, jm1 = skin.mouth_cols
    line_y = skin.closed[skin.below[skin.i_mouth], 1]
    xc = float(skin.closed[skin.below[skin.i_mouth, jm1], 0])
    Y = skin.closed[:, 1] - np.where(skin.col >= 0, line_y[np.clip(skin.col, 0, None)], 1.0)
    return xc, Y


def upperness(skin: Skin, xc: float, Y: np.ndarray, p: OpenHeadParams) -> np.ndarray:
    """0 below the mouth line (moves with the jaw), 1 above; sharp at the lips, soft on the cheeks.

    Beyond the corners the dividing line rises towards the jaw joint along the cheek.
    """
    x = np.abs(skin.closed[:, 0])
    z = skin.closed[:, 2]
    zc = 0.078
    lat = np.clip((zc - z) / (zc - p.jaw_joint[2]), 0, 1) * (x > xc)
    Yl = Y - lat * (p.jaw_joint[1] - 0.010 - p.mouth_y)
    b = 0.0010 + 0.5 * np.maximum(0.0, x - xc)
    delta = np.where(x < xc, 0.0015 * np.sqrt(np.clip(1 - (x / xc) ** 2, 0, 1)), 0.0)
    return smoothstep(-b, b, Yl + skin.side * delta)


def rest_gap(x, xc, p: OpenHeadParams):
    """The lips' rest gap at x: `p.rest_gap` at the centre, closing to 0 at the corners (xc)."""
    return p.rest_gap * np.clip(1.0 - (x / xc) ** 2, 0.0, 1.0)


def mouth_loop(skin: Skin) -> np.ndarray:
    """Vertex indices round the mouth slit: corner, upper lip edge, other corner, lower lip edge."""
    i, (j0, j1) = skin.i_mouth, skin.mouth_cols
    return np.concatenate([[skin.below[i, j0]], skin.above[i, j0 + 1:j1], [skin.below[i, j1]],
                           skin.below[i, j1 - 1:j0:-1]])


def eye_loop(skin: Skin, right: bool) -> np.ndarray:
    """Vertex indices round one eye's slit, in mouth_loop's order: corner, upper lid margin, other
    corner, lower lid margin."""
    i, (j0, j1) = skin.i_eye, skin.eye_cols
    if right:
        mid = int(np.argmin(np.abs(skin.u)))
        j0, j1 = 2 * mid - j1, 2 * mid - j0
    return np.concatenate([[skin.below[i, j0]], skin.above[i, j0 + 1:j1], [skin.below[i, j1]],
                           skin.below[i, j1 - 1:j0:-1]])
