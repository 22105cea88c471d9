"""The bundled open head: a stylised human head built from code, in the head-model `.npz` form.

FLAME cannot ship with the product, so Generate works out of the box on this head. It is built by
numpy alone, deterministically, from the parameters in `OpenHeadParams`:

- one skin surface (cranium, face, nose, lips, ears, neck ending in a clean cut), cast as a
  latitude/longitude grid of rays from a point inside the head onto an implicit shape. The mouth
  is a slit along one grid row whose two edges (the inner lip contour) join a dark mouth bag, so
  the skin and mouth form one oriented surface; each eye is a slit whose edges are the lid margins.
- separate closed meshes for the upper and lower teeth, the tongue and the two eyeballs.
- 40 expression channels named as ARKit blendshapes (`arkit_channels.OPEN_HEAD_CHANNELS`), each a
  smooth displacement field of its region; the `_R` channels are exact mirrors of the `_L` ones.
- joints global, neck, jaw (on the temporomandibular axis), eye_left, eye_right, with smooth
  linear-blend-skinning weights: chin, lower lip, lower teeth and tongue follow the jaw; the upper
  lip, nose and cheeks above the mouth line do not.

The jaw and jawOpen. ARKit rigs have no jaw bone, so the jaw rotation maps to the jawOpen channel:
a jaw rotation of `JAW_OPEN_FULL_RAD` (0.45 rad, stored in the npz as `jaw_open_full_rad`) about
+x equals jawOpen = 1. On this head the jawOpen shape is only the soft-tissue corrective that goes
with opening (lips and cheeks stretching); it is applied on top of the jaw rotation, so an
animation sets jaw_x = JAW_OPEN_FULL_RAD * jawOpen.

Rest pose: the lips are 1 mm apart at the centre (closing to the corners) and mouthClose seals
them. No channel other than mouthClose narrows the inner-lip gap, and the jaw only opens it, so
any mix of channels in [0, 1] keeps the lower lip below the upper. The eyelids are open; eyeBlink
closes them exactly. Lid offsets keep every lid vertex outside the eyeball for any mix of channels.

Extra arrays in the npz: `jaw_open_full_rad`, `face_group` (F,) int with `face_group_names`
(skin, lips, brows, mouth, teeth, tongue, eye_white, iris, pupil) for materials, and
`mirror_vertices` (V,) mapping each vertex to its left/right counterpart.

Coordinates as in FLAME: metres, y up, +z out of the face, +x to the subject's left (channels
ending in `_L` act on the subject's left, +x, side).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from model_runtime.heads.arkit_channels import JAW_OPEN_FULL_RAD, OPEN_HEAD_CHANNELS, mirror_name
from model_runtime.heads.head_model import HeadModel

HEAD_ID = "open_head_v1"
FACE_GROUPS = ("skin", "lips", "brows", "mouth", "teeth", "tongue", "eye_white", "iris", "pupil")
_DEG = np.pi / 180.0


@dataclass(frozen=True)
class OpenHeadParams:
    """Every number the generator uses (metres, degrees where named so)."""

    centre: tuple = (0.0, -0.010, 0.0)  # rays are cast from here
    neck_cut_y: float = -0.190
    # latitude rows: (from_deg, to_deg, points) segments, bottom to top
    rows: tuple = ((-74, -50, 6), (-50, -37, 7), (-37, -19, 19), (-19, -1, 13), (-1, 20, 17),
                   (20, 46, 9), (46, 84, 6))
    # longitude columns on one side: (to_deg, points) segments from 0 to 180
    cols: tuple = ((45, 35), (75, 11), (180, 15))
    # mouth
    mouth_y: float = -0.062
    mouth_z: float = 0.092
    mouth_corner_deg: float = 17.0
    rest_gap: float = 0.0010  # lips apart at the centre at rest
    lip_rows: int = 9  # grid rows on each side of the mouth that taper towards the corners
    lip_taper: float = 0.7
    upper_lip_rows: int = 4  # vermilion height in rows
    lower_lip_rows: int = 5
    crease_depth: float = 0.0025
    # eyes
    eye_centre: tuple = (0.031, 0.000, 0.056)  # left eye; the right one is its mirror
    eyeball_radius: float = 0.011
    lid_radius: float = 0.0138
    lid_meet_deg: float = -6.0  # where closed lids meet, seen from the eye centre
    lid_upper_open_deg: float = 28.0  # upper lid travel from closed to rest
    lid_lower_open_deg: float = 10.0
    lid_rows_upper: int = 10
    lid_rows_lower: int = 4
    eye_inner_deg: float = 62.0  # horizontal half-angles of the corners around the eye
    eye_outer_deg: float = 70.0
    # jaw
    jaw_joint: tuple = (0.0, -0.012, -0.004)
    neck_joint: tuple = (0.0, -0.085, -0.018)
    global_joint: tuple = (0.0, -0.170, -0.012)
    lower_lip_jaw_weight: float = 0.62


P = OpenHeadParams()


# --------------------------------------------------------------------------------------------
# implicit shape


def _ell(p, c, r):
    """Approximate signed distance to an ellipsoid."""
    q = (p - np.asarray(c)) / np.asarray(r)
    k0 = np.linalg.norm(q, axis=-1)
    k1 = np.linalg.norm(q / np.asarray(r), axis=-1)
    return k0 * (k0 - 1.0) / np.maximum(k1, 1e-12)


def _cone(p, a, b, ra, rb):
    """Approximate signed distance to a capsule whose radius goes from ra to rb."""
    a, b = np.asarray(a), np.asarray(b)
    ba = b - a
    h = np.clip(((p - a) @ ba) / (ba @ ba), 0.0, 1.0)
    return np.linalg.norm(p - a - h[..., None] * ba, axis=-1) - (ra + (rb - ra) * h)


def _smin(a, b, k):
    h = np.clip(0.5 + 0.5 * (b - a) / k, 0.0, 1.0)
    return b + (a - b) * h - k * h * (1.0 - h)


def _shape(p: np.ndarray) -> np.ndarray:
    """Signed distance (approx.) of the head's skin; symmetric in x by construction."""
    q = p.copy()
    q[..., 0] = np.abs(q[..., 0])  # paired features are built on the +x side only
    d = _ell(q, (0, 0.022, -0.012), (0.074, 0.098, 0.100))  # cranium
    d = _smin(d, _ell(q, (0, -0.030, 0.030), (0.060, 0.050, 0.058)), 0.020)  # mid face
    d = _smin(d, _ell(q, (0, -0.066, 0.012), (0.054, 0.050, 0.068)), 0.015)  # jaw
    d = _smin(d, _ell(q, (0, -0.099, 0.064), (0.018, 0.013, 0.012)), 0.012)  # chin
    d = _smin(d, _ell(q, (0, -0.057, 0.058), (0.034, 0.027, 0.033)), 0.012)  # muzzle
    d = _smin(d, _ell(q, (0.046, -0.014, 0.044), (0.021, 0.016, 0.024)), 0.012)  # cheekbone
    d = _smin(d, _ell(q, (0, 0.020, 0.059), (0.056, 0.013, 0.027)), 0.012)  # brow ridge
    d = _smin(d, _cone(q, (0, 0.010, 0.074), (0, -0.022, 0.101), 0.0065, 0.0088), 0.007)  # nose
    d = _smin(d, _ell(q, (0, -0.026, 0.1045), (0.0090, 0.0086, 0.0098)), 0.005)  # nose tip
    d = _smin(d, _ell(q, (0.0125, -0.0325, 0.0905), (0.0068, 0.0056, 0.0070)), 0.007)  # ala
    d = _smin(d, _ell(q, (0, -0.0555, 0.0830), (0.0245, 0.0070, 0.0128)), 0.004)  # upper lip
    d = _smin(d, _ell(q, (0, -0.0690, 0.0815), (0.0230, 0.0080, 0.0125)), 0.004)  # lower lip
    d = _smin(d, _cone(q, (0, -0.34, -0.012), (0, -0.05, -0.022), 0.047, 0.047), 0.020)  # neck
    d = _smin(d, _ell(q, (0.071, -0.006, -0.014), (0.009, 0.029, 0.016)), 0.004)  # ear
    sock = _ell(q, (0.031, 0.003, 0.075), (0.019, 0.013, 0.013))  # eye socket
    return -_smin(-d, sock, 0.006)


def _cast(dirs: np.ndarray, centre: np.ndarray) -> np.ndarray:
    """Surface points along rays from `centre` (bisection; the head is star-shaped from it)."""
    lo = np.zeros(dirs.shape[:-1])
    hi = np.full(dirs.shape[:-1], 0.35)
    for _ in range(30):
        mid = 0.5 * (lo + hi)
        inside = _shape(centre + mid[..., None] * dirs) < 0.0
        lo = np.where(inside, mid, lo)
        hi = np.where(inside, hi, mid)
    return centre + (0.5 * (lo + hi))[..., None] * dirs


# --------------------------------------------------------------------------------------------
# small helpers


def _smoothstep(e0, e1, x):
    t = np.clip((np.asarray(x, dtype=np.float64) - e0) / (e1 - e0), 0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)


def _gauss(d2, sigma):
    return np.exp(-0.5 * d2 / (sigma * sigma))


def _rot_x(v: np.ndarray, theta: np.ndarray) -> np.ndarray:
    """Rotate vectors about +x so that a point in front (+z) moves up for positive theta."""
    c, s = np.cos(theta), np.sin(theta)
    out = v.copy()
    out[..., 1] = v[..., 1] * c + v[..., 2] * s
    out[..., 2] = -v[..., 1] * s + v[..., 2] * c
    return out


def _segments(first: float, segs) -> np.ndarray:
    vals = [np.array([first], dtype=np.float64)]
    start = first
    for end, n in segs:
        vals.append(np.linspace(start, end, n)[1:])
        start = end
    return np.concatenate(vals)


def _tube_faces(n_around: int, n_along: int, offset: int, closed_along: bool = False) -> list:
    """Quads (as triangles) between consecutive rings of a ring-stack mesh."""
    faces = []
    rings = n_along if closed_along else n_along - 1
    for k in range(rings):
        k1 = (k + 1) % n_along
        for m in range(n_around):
            m1 = (m + 1) % n_around
            a, b = offset + k * n_around + m, offset + k * n_around + m1
            c, d = offset + k1 * n_around + m1, offset + k1 * n_around + m
            faces += [(a, b, c), (a, c, d)]
    return faces


def _ellipsoid_mesh(centre, radii, n_around: int, n_rings: int, offset: int, pol_deg=None):
    """Closed UV-ellipsoid with poles on the z axis (front pole first), outward winding."""
    pol = (np.linspace(0.0, np.pi, n_rings + 2)[1:-1] if pol_deg is None
           else np.asarray(pol_deg, dtype=np.float64) * _DEG)
    n_rings = len(pol)
    az = np.arange(n_around) * (2 * np.pi / n_around)
    ring = np.stack([np.sin(pol)[:, None] * np.cos(az)[None], np.sin(pol)[:, None] * np.sin(az)[None],
                     np.cos(pol)[:, None] * np.ones_like(az)[None]], axis=-1).reshape(-1, 3)
    verts = np.concatenate([[[0, 0, 1.0]], ring, [[0, 0, -1.0]]]) * np.asarray(radii) + centre
    front, back = offset, offset + 1 + n_rings * n_around
    faces = []
    for m in range(n_around):
        m1 = (m + 1) % n_around
        faces.append((front, offset + 1 + m1, offset + 1 + m))
        last = offset + 1 + (n_rings - 1) * n_around
        faces.append((back, last + m, last + m1))
    for k in range(n_rings - 1):
        for m in range(n_around):
            m1 = (m + 1) % n_around
            a, b = offset + 1 + k * n_around + m, offset + 1 + k * n_around + m1
            c, d = offset + 1 + (k + 1) * n_around + m1, offset + 1 + (k + 1) * n_around + m
            faces += [(a, b, c), (a, c, d)]
    return verts, faces, pol


# --------------------------------------------------------------------------------------------
# the skin grid


@dataclass
class _Skin:
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
    pos = _segments(0.0, p.cols)[1:]  # (0, 180]
    u = np.concatenate([-pos[::-1], [0.0], pos[:-1]]) * _DEG  # -180 .. < 180
    e = np.concatenate([np.linspace(a, b, n)[(0 if k == 0 else 1):]
                        for k, (a, b, n) in enumerate(p.rows)]) * _DEG
    c = np.asarray(p.centre)
    e_mouth = np.arctan2(p.mouth_y - c[1], p.mouth_z - c[2])
    ec = np.asarray(p.eye_centre)
    m = p.lid_meet_deg * _DEG
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
        x = ec[0] + sgn * p.lid_radius * np.sin(a * _DEG)
        z = ec[2] + p.lid_radius * np.cos(a * _DEG)
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
    s = (1.0 - _smoothstep(40 * _DEG, 75 * _DEG, ang)) * (1.0 - _smoothstep(0.016, 0.024, rho))
    r = np.maximum(rho, p.lid_radius)
    r = r + (p.lid_radius - r) * s
    q = ec + d * r[..., None]
    q[..., 0] *= np.where(sx == 0, 1.0, sx)
    return np.where((pts[..., 2] > 0.02)[..., None], q, pts)


def _lip_rows(e: np.ndarray, u: np.ndarray, i_m: int, p: OpenHeadParams) -> np.ndarray:
    """Latitude per (row, column): rows near the mouth converge at the corners like lips do."""
    uc = p.mouth_corner_deg * _DEG
    au = np.abs(u)
    t = np.where(au < uc, (au / uc) ** 2, 1.0 - _smoothstep(uc, uc + 14 * _DEG, au))
    k = np.abs(np.arange(len(e)) - i_m)
    h = np.clip(1.0 - k / p.lip_rows, 0.0, 1.0)
    return e[i_m] + (e - e[i_m])[:, None] * (1.0 - p.lip_taper * t[None] * h[:, None])


def _build_skin(p: OpenHeadParams) -> _Skin:
    u, e, i_m, i_e = _grid_angles(p)
    nr, nc = len(e), len(u)
    c = np.asarray(p.centre)
    E = _lip_rows(e, u, i_m, p)
    dirs = np.stack([np.cos(E) * np.sin(u)[None], np.sin(E), np.cos(E) * np.cos(u)[None]], axis=-1)
    grid = _cast(dirs, c)
    grid[0, :, 1] = p.neck_cut_y  # clean horizontal cut (the neck is vertical there)
    grid = _wrap_lids(grid, p)
    pole = _cast(np.array([[0.0, 1.0, 0.0]]), c)[0]

    # mouth crease: the slit row and its neighbours sink in along the ray
    xc = abs(grid[i_m, int(np.argmin(np.abs(u - p.mouth_corner_deg * _DEG))), 0])
    taper = 1.0 - _smoothstep(0.8, 1.3, np.abs(grid[i_m, :, 0]) / xc)
    for di, f in ((0, 1.0), (-1, 0.3), (1, 0.3)):
        depth = p.crease_depth * f * taper * (1.0 - 0.3 * (grid[i_m, :, 0] / xc) ** 2)
        grid[i_m + di] -= dirs[i_m + di] * depth[:, None]

    jm0 = int(np.argmin(np.abs(u + p.mouth_corner_deg * _DEG)))
    jm1 = int(np.argmin(np.abs(u - p.mouth_corner_deg * _DEG)))
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
    return _Skin(pos=pos, closed=pos.copy(), row=np.concatenate(row), col=np.concatenate(col),
                 side=side_arr, faces=faces, u=u, e=e, i_mouth=i_m, i_eye=i_e,
                 mouth_cols=(jm0, jm1), eye_cols=(je0, je1), below=below, above=above,
                 pole=pole_i)


def _eye_angles(skin: _Skin, p: OpenHeadParams, right: bool):
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


def _rotate_about_eye(pts, theta, p: OpenHeadParams, right: bool):
    ec = np.asarray(p.eye_centre) * np.array([-1.0 if right else 1.0, 1.0, 1.0])
    return ec + _rot_x(pts - ec, theta)


def _open_eyes(skin: _Skin, p: OpenHeadParams) -> None:
    """Rest pose: rotate the lids from their closed (slit) position to open."""
    for right in (False, True):
        g, fu, fl = _eye_angles(skin, p, right)
        th = g * (p.lid_upper_open_deg * fu - p.lid_lower_open_deg * fl) * _DEG
        sel = th != 0
        skin.pos[sel] = _rotate_about_eye(skin.closed[sel], th[sel], p, right)


def _mouth_frame(skin: _Skin):
    """Mouth line per column, corner x and for every skin vertex Y = height above the mouth line."""
    jm0, jm1 = skin.mouth_cols
    line_y = skin.closed[skin.below[skin.i_mouth], 1]
    xc = float(skin.closed[skin.below[skin.i_mouth, jm1], 0])
    Y = skin.closed[:, 1] - np.where(skin.col >= 0, line_y[np.clip(skin.col, 0, None)], 1.0)
    return xc, Y


def _upperness(skin: _Skin, xc: float, Y: np.ndarray, p: OpenHeadParams) -> np.ndarray:
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
    return _smoothstep(-b, b, Yl + skin.side * delta)


# --------------------------------------------------------------------------------------------
# mouth bag, teeth, tongue, eyeballs

# mouth bag rings behind the lips: (depth behind the lips, half height, width scale, jaw weight)
_BAG_RINGS = ((0.003, 0.004, 1.00, 0.75), (0.008, 0.011, 1.12, 0.90), (0.018, 0.015, 1.25, 1.0),
              (0.038, 0.014, 1.15, 0.9), (0.058, 0.009, 0.75, 0.6))


def _mouth_loop(skin: _Skin) -> np.ndarray:
    """Vertex indices round the mouth slit: corner, upper lip edge, other corner, lower lip edge."""
    i, (j0, j1) = skin.i_mouth, skin.mouth_cols
    return np.concatenate([[skin.below[i, j0]], skin.above[i, j0 + 1:j1], [skin.below[i, j1]],
                           skin.below[i, j1 - 1:j0:-1]])


def _build_bag(skin: _Skin, offset: int):
    """Dark mouth cavity stitched to the lip edges, so an open mouth is not see-through."""
    loop = _mouth_loop(skin)
    lp = skin.pos[loop]
    xc = abs(lp[0, 0])
    sd = skin.side[loop].astype(np.float64)
    prof = 0.3 + 0.7 * np.sqrt(np.clip(1.0 - (lp[:, 0] / xc) ** 2, 0.0, 1.0))
    n = len(loop)
    verts, wj = [], []
    for depth, half, sx, wjaw in _BAG_RINGS:
        r = lp.copy()
        r[:, 0] *= sx
        r[:, 1] += sd * half * prof
        r[:, 2] -= depth
        verts.append(r)
        low = 1.0 - _smoothstep(-0.5 * half, 0.5 * half, sd * half * prof)
        wj.append(wjaw * low)
    back = np.array([[0.0, lp[:, 1].mean(), lp[:, 2].max() - 0.066]])
    verts.append(back)
    wj.append(np.array([0.3]))
    rings = [loop] + [offset + k * n + np.arange(n) for k in range(len(_BAG_RINGS))]
    cap = offset + len(_BAG_RINGS) * n
    faces = []
    for a, b in zip(rings[:-1], rings[1:]):
        for m in range(n):
            m1 = (m + 1) % n
            faces += [(a[m1], a[m], b[m]), (a[m1], b[m], b[m1])]
    last = rings[-1]
    for m in range(n):
        faces.append((last[(m + 1) % n], last[m], cap))
    return np.concatenate(verts), faces, np.concatenate(wj), rings[1]


def _build_teeth(y_line: float, z_front: float, upper: bool, offset: int):
    """One dental arch as a closed tube: incisors at the front, molars at the back."""
    s = np.linspace(-1.0, 1.0, 23)
    width = 0.0255 if upper else 0.0235
    cx, cz = width * np.sin(s * 1.15) / np.sin(1.15), z_front - 0.029 * s ** 2
    tx, tz = np.gradient(cx), np.gradient(cz)
    tl = np.hypot(tx, tz)
    nx, nz = tz / tl, -tx / tl  # outward (front) normal of the arch in the xz plane
    t = 0.0065 if upper else 0.0058
    if upper:
        top, edge = y_line + 0.0100, y_line - 0.0010
    else:
        top, edge = y_line - 0.0100, y_line - 0.0018
    cross = [(0.5 * t, top), (0.5 * t, edge + 0.25 * (top - edge)), (0.25 * t, edge),
             (-0.25 * t, edge), (-0.5 * t, edge + 0.25 * (top - edge)), (-0.5 * t, top)]
    verts = []
    for k in range(len(s)):
        for off, y in cross:
            verts.append((cx[k] + off * nx[k], y, cz[k] + off * nz[k]))
    verts = np.array(verts)
    nca = len(cross)
    faces = _tube_faces(nca, len(s), offset)
    ends = np.array([verts[:nca].mean(0), verts[-nca:].mean(0)])
    c0, c1 = offset + len(verts), offset + len(verts) + 1
    last = offset + (len(s) - 1) * nca
    for m in range(nca):
        m1 = (m + 1) % nca
        faces.append((c0, offset + m1, offset + m))
        faces.append((c1, last + m, last + m1))
    return np.concatenate([verts, ends]), faces


def _fix_winding(verts: np.ndarray, faces: list, offset: int) -> list:
    """Flip a closed component's triangles if its signed volume is negative (outward normals)."""
    f = np.asarray(faces) - offset
    a, b, c = verts[f[:, 0]], verts[f[:, 1]], verts[f[:, 2]]
    vol = np.einsum("ij,ij->i", a, np.cross(b, c)).sum()
    return faces if vol > 0 else [(x, z, y) for x, y, z in faces]


# --------------------------------------------------------------------------------------------
# expression channels


def _channels_left(skin: _Skin, p: OpenHeadParams, xc: float, Y: np.ndarray, U: np.ndarray):
    """Displacement fields (Vs, 3) of the symmetric channels and the subject's-left ones."""
    Q = skin.pos
    x, y, z = Q[:, 0], Q[:, 1], Q[:, 2]
    ax = np.abs(x)
    front = _smoothstep(0.0, 0.03, z)
    corner = Q[skin.below[skin.i_mouth, skin.mouth_cols[1]]]
    slit = (skin.row == skin.i_mouth) & (skin.side != 0)
    zero = lambda: np.zeros_like(Q)  # noqa: E731
    g = _gauss
    dc2 = ((Q - corner) ** 2).sum(1)
    vermU = U * g(Y ** 2, 0.005) * g(x ** 2, 0.8 * xc)
    vermL = (1 - U) * g(Y ** 2, 0.006) * g(x ** 2, 0.8 * xc)
    cheek = g((ax - 0.042) ** 2, 0.014) * g((y + 0.050) ** 2, 0.016) * front
    A = g(x ** 2, 0.018)
    ch = {}

    d = zero()  # jawOpen: soft-tissue corrective on top of the jaw rotation
    mouth_w = g(x ** 2, 0.026) * g(Y ** 2, 0.012)
    d[:, 0] -= 0.07 * x * mouth_w
    d[:, 1] += 0.0009 * U * g(Y ** 2, 0.006) * g(x ** 2, 0.02)
    d[:, 1] += 0.15 * np.maximum(-Y, 0) * vermL
    d[:, 1] -= 0.0024 * cheek
    d[:, 0] -= 0.0012 * np.sign(x) * cheek
    d[:, 2] -= 0.0012 * U * g(Y ** 2, 0.008) * A
    ch["jawOpen"] = d

    d = zero()  # mouthClose: lips meet (only channel narrowing the lip gap) and purse slightly
    gap = _rest_gap(x, xc, p)
    d[:, 1] -= np.where(slit, skin.side * 0.5 * gap, 0.0)
    d[:, 1] -= 0.12 * Y * (vermU + vermL)
    d[:, 2] += 0.0022 * (vermU + vermL)
    ch["mouthClose"] = d

    d = zero()  # mouthFunnel: lips flare into an open O
    d[:, 0] -= 0.2 * x * g(x ** 2, 0.030) * g(Y ** 2, 0.013)
    d[:, 2] += 0.004 * g(x ** 2, 0.018) * g(Y ** 2, 0.011) + 0.002 * (vermU + vermL)
    d[:, 1] += 0.0028 * (U - (1 - U)) * g(x ** 2, 0.012) * g(Y ** 2, 0.008)
    ch["mouthFunnel"] = d

    d = zero()  # mouthPucker: lips pushed forward and together, mouth narrow
    d[:, 0] -= 0.26 * x * g(x ** 2, 0.030) * g(Y ** 2, 0.014)
    d[:, 2] += 0.0062 * g(x ** 2, 0.016) * g(Y ** 2, 0.010)
    d[:, 1] -= 0.25 * Y * g(x ** 2, 0.02) * g(Y ** 2, 0.009)
    d[:, 0] -= 0.001 * np.sign(x) * cheek
    ch["mouthPucker"] = d

    d = zero()  # mouthLeft: the closed mouth slides to the subject's left
    w = g(x ** 2, 0.022) * g(Y ** 2, 0.013) * front
    d[:, 0] += 0.0055 * w
    d[:, 2] -= 0.0016 * (x / xc) * w
    ch["mouthLeft"] = d

    wc = g(dc2, 0.011)
    wb = g((x - 0.036) ** 2 + (y + 0.034) ** 2, 0.010) * front
    ch["mouthSmile_L"] = wc[:, None] * [0.0055, 0.0068, -0.0030] + wb[:, None] * [0.0006, 0.0034, 0.0020]
    wf = g(((Q - corner - [0.002, -0.004, -0.002]) ** 2).sum(1), 0.010)
    d = wf[:, None] * [0.0010, -0.0048, -0.0005]
    d[:, 1] -= 0.0012 * g((x - 0.018) ** 2 + (y + 0.090) ** 2, 0.012) * front
    ch["mouthFrown_L"] = d
    ch["mouthDimple_L"] = g(dc2, 0.008)[:, None] * [0.0022, 0.0003, -0.0035]
    d = g(dc2, 0.012)[:, None] * [0.0055, -0.0020, -0.0010]
    d[:, 1] -= 0.0015 * (1 - U) * g((x - 0.015) ** 2, 0.010) * g(Y ** 2, 0.008)
    ch["mouthStretch_L"] = d

    d = zero()  # mouthRollLower: the lower lip rolls in over the teeth
    roll = (1 - U) * g(x ** 2, 0.017) * g(Y ** 2, 0.0075)
    d[:, 1] += 0.5 * np.maximum(-Y, 0) * roll
    d[:, 2] -= 0.0036 * roll
    ch["mouthRollLower"] = d
    d = zero()
    roll = U * g(x ** 2, 0.017) * g(Y ** 2, 0.0065)
    d[:, 1] -= 0.5 * np.maximum(Y, 0) * roll
    d[:, 2] -= 0.0032 * roll
    ch["mouthRollUpper"] = d

    d = zero()  # mouthShrugLower: chin raiser pushes the lower lip (and with it the upper) up
    d[:, 1] += 0.003 * A * ((1 - U) * g(Y ** 2, 0.014) + U * g(Y ** 2, 0.004))
    d[:, 2] += 0.0022 * A * (1 - U) * g((Y + 0.02) ** 2, 0.012)
    ch["mouthShrugLower"] = d
    d = zero()
    d[:, 1] += 0.0025 * A * U * g(Y ** 2, 0.007)
    d[:, 2] += 0.0022 * A * U * g(Y ** 2, 0.007)
    ch["mouthShrugUpper"] = d

    d = zero()  # mouthPress_L: lips pressed thin on the left
    sl = _smoothstep(-0.012, 0.012, x)
    d[:, 1] -= 0.6 * Y * g(Y ** 2, 0.007) * g(x ** 2, 0.022) * sl
    d[:, 1] += 0.0008 * g(x ** 2, 0.022) * g(Y ** 2, 0.008) * sl
    d[:, 2] -= 0.0010 * g(x ** 2, 0.022) * g(Y ** 2, 0.008) * sl
    ch["mouthPress_L"] = d
    wl = g((x - 0.011) ** 2, 0.011)
    d = zero()
    d[:, 1] -= 0.0045 * wl * (1 - U) * g(Y ** 2, 0.011)
    d[:, 2] += 0.0010 * wl * (1 - U) * g(Y ** 2, 0.011)
    ch["mouthLowerDown_L"] = d
    d = zero()
    d[:, 1] += 0.0045 * wl * U * g(Y ** 2, 0.009)
    d[:, 2] += 0.0008 * wl * U * g(Y ** 2, 0.009)
    d[:, 1] += 0.0010 * g((x - 0.020) ** 2 + (y + 0.040) ** 2, 0.006) * front
    ch["mouthUpperUp_L"] = d

    wb = g((x - 0.028) ** 2, 0.016) * g((y - 0.019) ** 2, 0.011) * front
    wi = g((x - 0.014) ** 2, 0.008) * g((y - 0.016) ** 2, 0.008) * front
    ch["browDown_L"] = wb[:, None] * [-0.0018, -0.0042, 0.0008] + wi[:, None] * [0, -0.0015, 0.0005]
    d = zero()
    d[:, 1] += 0.0055 * g((ax - 0.013) ** 2, 0.012) * g((y - 0.022) ** 2, 0.014) * front
    ch["browInnerUp"] = d
    d = zero()
    d[:, 1] += 0.0050 * g((x - 0.046) ** 2, 0.012) * g((y - 0.020) ** 2, 0.013) * front
    ch["browOuterUp_L"] = d

    wp = g((ax - 0.040) ** 2, 0.013) * g((y + 0.055) ** 2, 0.016) * front
    out = np.stack([x, np.zeros_like(x), np.maximum(z - 0.02, 0.0)], 1)
    out /= np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-9)
    ch["cheekPuff"] = 0.006 * wp[:, None] * out + 0.001 * (mouth_w * front)[:, None] * [0, 0, 1]
    wq = g((x - 0.037) ** 2, 0.012) * g((y + 0.018) ** 2, 0.009) * front
    ch["cheekSquint_L"] = wq[:, None] * [0.0, 0.0030, 0.0012]
    wn = g((x - 0.013) ** 2 + (y + 0.030) ** 2, 0.008) * _smoothstep(0.04, 0.06, z)
    wr = g((x - 0.009) ** 2 + (y + 0.004) ** 2, 0.007) * _smoothstep(0.04, 0.06, z)
    ch["noseSneer_L"] = wn[:, None] * [0.0004, 0.0032, 0.0006] + wr[:, None] * [0, 0.0012, 0]

    # eyes: rotations of the lids about the left eye's centre
    gl, fu, fl = _eye_angles(skin, p, right=False)
    lid = (gl > 0) & ((fu > 0) | (fl > 0))

    def rot(theta):
        out = zero()
        out[lid] = _rotate_about_eye(Q[lid], theta[lid], p, False) - Q[lid]
        return out

    d = zero()
    d[lid] = skin.closed[lid] - Q[lid]
    ch["eyeBlink_L"] = d
    fl2 = np.where(fl > 0, np.clip(1.0 + (skin.row - skin.i_eye) / 5.0, 0, 1), 0.0)
    d = rot(gl * (10.0 * fl2 - 5.0 * fu) * _DEG)
    d[:, 0] -= 0.0009 * g((x - 0.049) ** 2 + y ** 2, 0.006) * front
    ch["eyeSquint_L"] = d
    d = rot(gl * (12.0 * fu - 3.0 * fl) * _DEG)
    d[:, 1] += 0.0010 * wb
    ch["eyeWide_L"] = d
    ch["cheekSquint_L"] = ch["cheekSquint_L"] + rot(gl * 5.0 * fl * _DEG)
    return ch


def _rest_gap(x, xc, p: OpenHeadParams):
    return p.rest_gap * np.clip(1.0 - (x / xc) ** 2, 0.0, 1.0)


def _clamp_eye_radial(d: np.ndarray, pos: np.ndarray, p: OpenHeadParams) -> np.ndarray:
    """Remove offsets that point into an eyeball from skin near the eyes (no lid through the eye)."""
    d = d.copy()
    for sgn in (1.0, -1.0):
        ec = np.asarray(p.eye_centre) * [sgn, 1, 1]
        v = pos - ec
        rho = np.linalg.norm(v, axis=1)
        rh = v / rho[:, None]
        t = 1.0 - _smoothstep(0.016, 0.020, rho)
        a = np.einsum("ij,ij->i", d, rh)
        d -= (t * np.minimum(a, 0.0))[:, None] * rh
    return d


def _mirror_map(pos: np.ndarray) -> np.ndarray:
    """Index of each vertex's mirror image in x (the head is exactly symmetric)."""
    key = lambda a: [tuple(r) for r in np.round(a * 1e7).astype(np.int64)]  # noqa: E731
    lookup = {k: i for i, k in enumerate(key(pos))}
    mirrored = pos * [-1.0, 1.0, 1.0]
    out = np.array([lookup.get(k, -1) for k in key(mirrored)])
    if np.any(out < 0):
        raise RuntimeError(f"open head is not symmetric at {int(np.sum(out < 0))} vertices")
    return out


# --------------------------------------------------------------------------------------------
# assembly


def _skin_jaw_weight(skin: _Skin, xc: float, Y: np.ndarray, U: np.ndarray, p: OpenHeadParams):
    """Jaw share of each skin vertex: below the mouth line, lagging a little at the lower lip."""
    x, y, z = skin.pos[:, 0], skin.pos[:, 1], skin.pos[:, 2]
    lag = (1.0 - p.lower_lip_jaw_weight) * (1.0 - _smoothstep(0.0, 0.012, -Y)) \
        * (1.0 - _smoothstep(xc, 1.6 * xc, np.abs(x)))
    w = (1.0 - U) * (1.0 - lag)
    w *= _smoothstep(-0.140, -0.108, y + 0.3 * np.maximum(0.0, z - 0.04))
    w *= _smoothstep(-0.030, 0.005, z)
    return w


def _landmarks(skin: _Skin, p: OpenHeadParams) -> dict:
    i_m, (jm0, jm1) = skin.i_mouth, skin.mouth_cols
    mid = int(np.argmin(np.abs(skin.u)))
    je0, je1 = skin.eye_cols
    g, _, _ = _eye_angles(skin, p, right=False)
    grid_cols = np.arange(je0 + 1, je1)
    jmax = int(grid_cols[np.argmax(g[skin.below[skin.i_eye, je0 + 1:je1]])])
    front = np.where((skin.pos[:, 2] > 0.03) & (skin.side == 0))[0]

    def nearest(x, y):
        k = front[np.argmin((skin.pos[front, 0] - x) ** 2 + (skin.pos[front, 1] - y) ** 2)]
        return int(k)

    centre_col = np.where((skin.col == mid) & (skin.side == 0))[0]
    lm = {
        "lip_upper_inner": skin.above[i_m, mid], "lip_lower_inner": skin.below[i_m, mid],
        "mouth_corner_left": skin.below[i_m, jm1], "mouth_corner_right": skin.below[i_m, jm0],
        "eyelid_upper_left": skin.above[skin.i_eye, jmax],
        "eyelid_lower_left": skin.below[skin.i_eye, jmax],
        "eyelid_upper_right": skin.above[skin.i_eye, 2 * mid - jmax],
        "eyelid_lower_right": skin.below[skin.i_eye, 2 * mid - jmax],
        "brow_inner_left": nearest(0.015, 0.021), "brow_inner_right": nearest(-0.015, 0.021),
        "brow_outer_left": nearest(0.047, 0.020), "brow_outer_right": nearest(-0.047, 0.020),
        "chin": int(centre_col[np.argmin(np.abs(skin.pos[centre_col, 1] + 0.100))]),
        "nose_tip": int(centre_col[np.argmax(skin.pos[centre_col, 2])]),
    }
    return {k: int(v) for k, v in lm.items()}


def _skin_face_groups(skin: _Skin, p: OpenHeadParams) -> np.ndarray:
    """Lips and brows among the skin faces, chosen by grid quad so their outlines follow the rows."""
    nr, nc = skin.below.shape
    n_quads = (nr - 1) * nc
    q = np.arange(len(skin.faces)) // 2
    i, j = q // nc, q % nc
    grid = q < n_quads
    jm0, jm1 = skin.mouth_cols
    cols = (j >= jm0) & (j < jm1)
    lips = grid & cols & (i >= skin.i_mouth - p.lower_lip_rows) & (i < skin.i_mouth + p.upper_lip_rows)
    # brows: a band two rows high above each eye, one row at the outer tail
    mid = int(np.argmin(np.abs(skin.u)))
    jb = int(np.argmin(np.abs(skin.u - np.arctan2(0.030, 0.085))))
    i_b = int(np.argmin(np.abs(skin.pos[skin.below[:, jb], 1] - 0.0175)))
    x = np.abs(skin.pos[skin.below[np.clip(i, 0, nr - 1), j], 0]
               + skin.pos[skin.below[np.clip(i, 0, nr - 1), (j + 1) % nc], 0]) * 0.5
    x = np.where(np.abs(j - mid) < nc // 4, x, 1.0)
    brows = grid & (x > 0.012) & (x < 0.056) & (i >= i_b) & (i <= i_b + np.where(x > 0.046, 0, 1))
    grp = np.zeros(len(skin.faces), dtype=np.int8)
    grp[lips] = FACE_GROUPS.index("lips")
    grp[brows] = FACE_GROUPS.index("brows")
    return grp


def build_open_head(params: OpenHeadParams = P) -> HeadModel:
    """Build the open head (deterministic; about a second)."""
    p = params
    skin = _build_skin(p)
    _open_eyes(skin, p)
    xc, Y = _mouth_frame(skin)
    U = _upperness(skin, xc, Y, p)
    ch_left = _channels_left(skin, p, xc, Y, U)
    slit = (skin.row == skin.i_mouth) & (skin.side != 0)
    skin.pos[:, 1] += np.where(slit, skin.side * 0.5 * _rest_gap(skin.pos[:, 0], xc, p), 0.0)
    vs = len(skin.pos)
    y_line = float(skin.pos[skin.below[skin.i_mouth, int(np.argmin(np.abs(skin.u)))], 1])

    verts, faces, groups, wjaw = [skin.pos], [], [], []
    faces += skin.faces
    groups.append(_skin_face_groups(skin, p))
    wj = _skin_jaw_weight(skin, xc, Y, U, p)
    wjaw.append(wj)
    n = vs

    bag_v, bag_f, bag_w, ring1 = _build_bag(skin, n)
    verts.append(bag_v)
    faces += bag_f
    groups.append(np.full(len(bag_f), FACE_GROUPS.index("mouth"), dtype=np.int8))
    wjaw.append(bag_w)
    n_bag0 = n
    n += len(bag_v)

    for upper in (True, False):
        tv, tf = _build_teeth(y_line, 0.0815 if upper else 0.0790, upper, n)
        tf = _fix_winding(tv, tf, n)
        verts.append(tv)
        faces += tf
        groups.append(np.full(len(tf), FACE_GROUPS.index("teeth"), dtype=np.int8))
        wjaw.append(np.full(len(tv), 0.0 if upper else 1.0))
        n += len(tv)

    tv, tf, _ = _ellipsoid_mesh(np.array([0.0, y_line - 0.012, 0.050]), (0.020, 0.0075, 0.024),
                                16, 8, n)
    tf = _fix_winding(tv, tf, n)
    verts.append(tv)
    faces += tf
    groups.append(np.full(len(tf), FACE_GROUPS.index("tongue"), dtype=np.int8))
    wjaw.append(np.full(len(tv), 1.0))
    n += len(tv)

    eye_pol = (7, 13, 20, 27, 33, 45, 60, 75, 90, 110, 130, 150, 170)
    eye_rng = []
    for sgn in (1.0, -1.0):
        ec = np.asarray(p.eye_centre) * [sgn, 1, 1]
        ev, ef, pol = _ellipsoid_mesh(ec, (p.eyeball_radius,) * 3, 24, 0, n, eye_pol)
        ef = _fix_winding(ev, ef, n)
        fpol = np.degrees(np.arccos(np.clip((ev[np.asarray(ef) - n].mean(1) - ec)[:, 2]
                                            / p.eyeball_radius, -1, 1)))
        grp = np.where(fpol < 10, FACE_GROUPS.index("pupil"),
                       np.where(fpol < 30, FACE_GROUPS.index("iris"),
                                FACE_GROUPS.index("eye_white")))
        verts.append(ev)
        faces += ef
        groups.append(grp.astype(np.int8))
        wjaw.append(np.zeros(len(ev)))
        eye_rng.append((n, n + len(ev)))
        n += len(ev)

    v = np.concatenate(verts)
    nv = len(v)
    wjaw = np.concatenate(wjaw)
    w_glob = np.zeros(nv)
    w_glob[:vs] = 1.0 - _smoothstep(-0.175, -0.125, v[:vs, 1])
    wjaw *= 1.0 - w_glob
    lbs = np.zeros((nv, 5))
    lbs[:, 0] = w_glob
    lbs[:, 2] = wjaw
    lbs[:, 1] = 1.0 - w_glob - wjaw
    for k, (a, b) in enumerate(eye_rng):
        lbs[a:b] = 0.0
        lbs[a:b, 3 + k] = 1.0

    mirror = _mirror_map(v)
    exp = np.zeros((nv, 3, len(OPEN_HEAD_CHANNELS)))
    loop = _mouth_loop(skin)
    n_loop = len(loop)
    for e_i, name in enumerate(OPEN_HEAD_CHANNELS):
        src = name if name in ch_left else mirror_name(name)
        d = np.zeros((nv, 3))
        d[:vs] = ch_left[src]
        d[n_bag0:n_bag0 + n_loop] = 0.5 * d[loop]  # first bag ring follows the lip edge
        d[n_bag0 + n_loop:n_bag0 + 2 * n_loop] = 0.2 * d[loop]
        if not src.startswith("eyeBlink"):
            d = _clamp_eye_radial(d, v, p)
        mirrored = d[mirror] * [-1.0, 1.0, 1.0]
        if src != name:
            d = mirrored
        elif mirror_name(name) == name:
            d = 0.5 * (d + mirrored)
        exp[:, :, e_i] = d

    lm = _landmarks(skin, p)
    joints = np.array([p.global_joint, p.neck_joint, p.jaw_joint,
                       p.eye_centre, np.asarray(p.eye_centre) * [-1, 1, 1]], dtype=np.float64)
    return HeadModel(
        head_id=HEAD_ID,
        v_template=v.astype(np.float32),
        faces=np.asarray(faces, dtype=np.int32),
        exp_names=list(OPEN_HEAD_CHANNELS),
        exp_dirs=exp.astype(np.float32),
        joint_names=["global", "neck", "jaw", "eye_left", "eye_right"],
        joints=joints.astype(np.float32),
        parents=np.array([-1, 0, 1, 1, 1]),
        lbs_weights=lbs.astype(np.float32),
        landmark_names=list(lm),
        landmark_vertices=np.array(list(lm.values()), dtype=np.int64),
        extra={
            "jaw_open_full_rad": np.array(JAW_OPEN_FULL_RAD, dtype=np.float32),
            "face_group": np.concatenate(groups).astype(np.int8),
            "face_group_names": np.array(FACE_GROUPS, dtype=str),
            "mirror_vertices": mirror.astype(np.int32),
        },
    )


def default_head_path() -> Path:
    """Path of the bundled open-head `.npz`; built (and cached) on first use if it is missing."""
    from model_runtime.heads.head_model import save_head

    path = Path(__file__).with_name("open_head.npz")
    if path.is_file():
        return path
    try:
        save_head(build_open_head(), path)
        return path
    except OSError:  # read-only install: cache it in the user's cache folder
        import os

        base = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
        cached = base / "emote_blender" / "open_head.npz"
        if not cached.is_file():
            save_head(build_open_head(), cached)
        return cached


# Expression presets for previews and the teacher: channel weights in [0, 1], "jaw" in radians.
EXPRESSION_PRESETS: dict[str, dict[str, float]] = {
    "rest": {},
    "AA_open": {"jaw": 0.32, "jawOpen": 0.7, "mouthLowerDown_L": 0.3, "mouthLowerDown_R": 0.3},
    "OO_rounded": {"jaw": 0.10, "jawOpen": 0.2, "mouthPucker": 0.6, "mouthFunnel": 0.7},
    "EE_spread": {"jaw": 0.08, "jawOpen": 0.15, "mouthStretch_L": 0.7, "mouthStretch_R": 0.7,
                  "mouthSmile_L": 0.3, "mouthSmile_R": 0.3, "mouthUpperUp_L": 0.3,
                  "mouthUpperUp_R": 0.3},
    "MBP_closed": {"mouthClose": 1.0, "mouthPress_L": 0.5, "mouthPress_R": 0.5},
    "FV": {"jaw": 0.05, "mouthRollLower": 0.8, "mouthUpperUp_L": 0.4, "mouthUpperUp_R": 0.4},
    "neutral": {},
    "happy": {"mouthSmile_L": 0.9, "mouthSmile_R": 0.9, "cheekSquint_L": 0.6,
              "cheekSquint_R": 0.6, "eyeSquint_L": 0.3, "eyeSquint_R": 0.3, "mouthDimple_L": 0.3,
              "mouthDimple_R": 0.3},
    "sad": {"browInnerUp": 0.9, "mouthFrown_L": 0.8, "mouthFrown_R": 0.8, "mouthShrugLower": 0.4,
            "eyeSquint_L": 0.2, "eyeSquint_R": 0.2, "mouthPress_L": 0.2, "mouthPress_R": 0.2},
    "surprised": {"jaw": 0.22, "jawOpen": 0.4, "browInnerUp": 0.9, "browOuterUp_L": 0.9,
                  "browOuterUp_R": 0.9, "eyeWide_L": 0.9, "eyeWide_R": 0.9, "mouthFunnel": 0.3},
    "fear": {"jaw": 0.10, "browInnerUp": 1.0, "browOuterUp_L": 0.3, "browOuterUp_R": 0.3,
             "eyeWide_L": 1.0, "eyeWide_R": 1.0, "mouthStretch_L": 0.8, "mouthStretch_R": 0.8,
             "browDown_L": 0.2, "browDown_R": 0.2},
    "disgusted": {"noseSneer_L": 1.0, "noseSneer_R": 1.0, "mouthUpperUp_L": 0.7,
                  "mouthUpperUp_R": 0.7, "browDown_L": 0.6, "browDown_R": 0.6, "eyeSquint_L": 0.5,
                  "eyeSquint_R": 0.5, "cheekSquint_L": 0.5, "cheekSquint_R": 0.5,
                  "mouthFrown_L": 0.3, "mouthFrown_R": 0.3},
    "angry": {"browDown_L": 1.0, "browDown_R": 1.0, "eyeSquint_L": 0.6, "eyeSquint_R": 0.6,
              "noseSneer_L": 0.4, "noseSneer_R": 0.4, "mouthPress_L": 0.6, "mouthPress_R": 0.6,
              "mouthFrown_L": 0.4, "mouthFrown_R": 0.4, "mouthRollUpper": 0.2},
    "contempt": {"mouthSmile_L": 0.7, "mouthDimple_L": 0.7, "eyeSquint_L": 0.2,
                 "mouthPress_R": 0.3, "browDown_R": 0.2},
}


def preset_vector(name: str, exp_names=OPEN_HEAD_CHANNELS) -> tuple[np.ndarray, np.ndarray]:
    """A preset as (expression weights (E,), jaw axis-angle (3,)) in the order of `exp_names`."""
    preset = EXPRESSION_PRESETS[name]
    exp = np.array([float(preset.get(n, 0.0)) for n in exp_names], dtype=np.float32)
    return exp, np.array([float(preset.get("jaw", 0.0)), 0.0, 0.0], dtype=np.float32)
