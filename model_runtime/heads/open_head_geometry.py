"""Numeric building blocks of the open head: its implicit skin shape, ray casting, falloffs and
closed meshes. numpy only; no knowledge of where the eyes or the mouth are.
"""

from __future__ import annotations

import numpy as np

from .open_head_tables import DEG


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
    d = _ell(q, (0, 0.020, -0.012), (0.075, 0.095, 0.099))  # cranium
    d = _smin(d, _ell(q, (0, 0.048, -0.020), (0.071, 0.066, 0.088)), 0.010)  # parietal breadth
    d = _smin(d, _ell(q, (0, -0.030, 0.030), (0.060, 0.050, 0.058)), 0.020)  # mid face
    d = _smin(d, _ell(q, (0, -0.066, 0.012), (0.057, 0.050, 0.068)), 0.015)  # jaw
    d = _smin(d, _ell(q, (0, -0.100, 0.065), (0.022, 0.014, 0.012)), 0.014)  # chin
    d = _smin(d, _ell(q, (0, -0.057, 0.058), (0.034, 0.027, 0.033)), 0.012)  # muzzle
    d = _smin(d, _ell(q, (0.046, -0.014, 0.044), (0.021, 0.016, 0.024)), 0.012)  # cheekbone
    d = _smin(d, _ell(q, (0, 0.020, 0.059), (0.056, 0.013, 0.027)), 0.012)  # brow ridge
    d = _smin(d, _cone(q, (0, 0.010, 0.074), (0, -0.022, 0.101), 0.0065, 0.0088), 0.007)  # nose
    d = _smin(d, _ell(q, (0, -0.026, 0.1045), (0.0090, 0.0086, 0.0098)), 0.005)  # nose tip
    d = _smin(d, _ell(q, (0, -0.0305, 0.0925), (0.0135, 0.0062, 0.0105)), 0.006)  # nose base
    d = _smin(d, _ell(q, (0.0110, -0.0315, 0.0895), (0.0048, 0.0052, 0.0080)), 0.006)  # ala
    d = _smin(d, _ell(q, (0, -0.0555, 0.0830), (0.0245, 0.0070, 0.0128)), 0.004)  # upper lip
    d = _smin(d, _ell(q, (0, -0.0680, 0.0815), (0.0230, 0.0070, 0.0120)), 0.006)  # lower lip
    d = _smin(d, _cone(q, (0, -0.34, -0.020), (0, -0.05, -0.016), 0.051, 0.049), 0.020)  # neck
    d = _smin(d, _ell(q, (0.068, -0.008, -0.009), (0.006, 0.015, 0.007)), 0.006)  # ear root
    sock = _ell(q, (0.031, 0.003, 0.075), (0.019, 0.013, 0.013))  # eye socket
    d = -_smin(-d, sock, 0.012)  # a soft socket rim: the eye sits under the brow
    nostril = _ell(q, (0.0068, -0.0352, 0.0975), (0.0030, 0.0020, 0.0048))
    return -_smin(-d, nostril, 0.0015)


def cast(dirs: np.ndarray, centre: np.ndarray) -> np.ndarray:
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


def smoothstep(e0, e1, x):
    """0 below e0, 1 above e1, a smooth cubic between."""
    t = np.clip((np.asarray(x, dtype=np.float64) - e0) / (e1 - e0), 0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)


def gauss(d2, sigma):
    """Gaussian falloff of a squared distance."""
    return np.exp(-0.5 * d2 / (sigma * sigma))


def rot_x(v: np.ndarray, theta: np.ndarray) -> np.ndarray:
    """Rotate vectors about +x so that a point in front (+z) moves up for positive theta."""
    c, s = np.cos(theta), np.sin(theta)
    out = v.copy()
    out[..., 1] = v[..., 1] * c + v[..., 2] * s
    out[..., 2] = -v[..., 1] * s + v[..., 2] * c
    return out


def segments(first: float, segs) -> np.ndarray:
    """Values from `first` through (end, points) segments, each end once."""
    vals = [np.array([first], dtype=np.float64)]
    start = first
    for end, n in segs:
        vals.append(np.linspace(start, end, n)[1:])
        start = end
    return np.concatenate(vals)


def tube_faces(n_around: int, n_along: int, offset: int, closed_along: bool = False) -> list:
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


def ellipsoid_mesh(centre, radii, n_around: int, n_rings: int, offset: int, pol_deg=None):
    """Closed UV-ellipsoid with poles on the z axis (front pole first), outward winding."""
    pol = (np.linspace(0.0, np.pi, n_rings + 2)[1:-1] if pol_deg is None
           else np.asarray(pol_deg, dtype=np.float64) * DEG)
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


def fix_winding(verts: np.ndarray, faces: list, offset: int) -> list:
    """Flip a closed component's triangles if its signed volume is negative (outward normals)."""
    f = np.asarray(faces) - offset
    a, b, c = verts[f[:, 0]], verts[f[:, 1]], verts[f[:, 2]]
    vol = np.einsum("ij,ij->i", a, np.cross(b, c)).sum()
    return faces if vol > 0 else [(x, z, y) for x, y, z in faces]


def mirror_map(pos: np.ndarray) -> np.ndarray:
    """Index of each vertex's mirror image in x (the head is exactly symmetric)."""
    key = lambda a: [tuple(r) for r in np.round(a * 1e7).astype(np.int64)]  # noqa: E731
    lookup = {k: i for i, k in enumerate(key(pos))}
    mirrored = pos * [-1.0, 1.0, 1.0]
    out = np.array([lookup.get(k, -1) for k in key(mirrored)])
    if np.any(out < 0):
        raise RuntimeError(f"open head is not symmetric at {int(np.sum(out < 0))} vertices")
    return out
