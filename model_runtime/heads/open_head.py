"""The bundled open head: a stylised human head built from code, in the head-model `.npz` form.

FLAME cannot ship with the product, so Generate works out of the box on this head. It is built by
numpy alone, deterministically, from the numbers in open_head_tables (`OpenHeadParams`, the
channel table):

- one skin surface (cranium, face, nose, lips, ear roots, a short neck flaring into a collar at a
  clean cut), cast as a latitude/longitude grid of rays from a point inside the head onto an
  implicit shape (the neck's rows per column, down to the cut). The mouth
  is a slit along one grid row whose two edges (the inner lip contour) join a dark mouth bag, so
  the skin and mouth form one oriented surface; each eye is a slit whose edges are the lid margins.
  The lips' colour follows the vermilion border (a Cupid's bow, meeting at the corners); the teeth
  sit behind the lips, so the mouth at rest shows none.
- lid rims stitched to each eye's margin, turning in to just outside the eyeball (lid thickness),
  with a ridge of eyelashes on the way; they take their margin vertex's offsets scaled by their
  distance from the eye centre, so blinks (rotations about it) carry them exactly.
- separate closed meshes for the upper and lower teeth, the tongue and the two eyeballs, and a
  raised shell of hair for each brow, arched and tapering to its tail, whose vertices ride on
  the skin triangle under them (its offsets and skinning, mixed by barycentric weights), and
  an ear on each side (helix, antihelix, concha and lobe on a shell whose back rim stands off
  the skull, which the skin's rays could not make), rigid with the neck.
- the skin round each eye socket is smoothed after casting (rays meet the socket's walls at a
  slant and would shade in stairs), so the eye sits under a soft brow, not in a stepped cut.
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
(skin, lips, brows, mouth, teeth, tongue, eye_white, iris, pupil, lashes) for materials, and
`mirror_vertices` (V,) mapping each vertex to its left/right counterpart.

Coordinates as in FLAME: metres, y up, +z out of the face, +x to the subject's left (channels
ending in `_L` act on the subject's left, +x, side).

The parts: open_head_tables (the numbers), open_head_geometry (implicit shape, falloffs, meshes),
open_head_skin (the skin grid and its frames), open_head_channels (the channel table applied);
this module assembles the head (skin, mouth bag, teeth, tongue, eyeballs, skinning, landmarks).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .arkit_channels import JAW_OPEN_FULL_RAD, OPEN_HEAD_CHANNELS
from .head_model import HeadModel, vertex_normals
from .open_head_channels import channels_left, expression_dirs
from .open_head_geometry import ellipsoid_mesh, fix_winding, mirror_map, smoothstep, tube_faces
from .open_head_skin import (Skin, build_skin, eye_angles, eye_loop, mouth_frame, mouth_loop,
                             open_eyes, rest_gap, upperness)
from .open_head_tables import (BAG_RINGS, EXPRESSION_PRESETS, EYE_POLAR_DEG, FACE_GROUPS,
                               HEAD_ID, IRIS_DEG, PUPIL_DEG, OpenHeadParams, P)

__all__ = ["HEAD_ID", "EXPRESSION_PRESETS", "OpenHeadParams", "build_open_head",
           "default_head_path", "preset_vector"]


# --------------------------------------------------------------------------------------------
# mouth bag, teeth, tongue, eyeballs


def _build_bag(skin: Skin, offset: int):
    """Dark mouth cavity stitched to the lip edges, so an open mouth is not see-through."""
    loop = mouth_loop(skin)
    lp = skin.pos[loop]
    xc = abs(lp[0, 0])
    sd = skin.side[loop].astype(np.float64)
    prof = 0.3 + 0.7 * np.sqrt(np.clip(1.0 - (lp[:, 0] / xc) ** 2, 0.0, 1.0))
    n = len(loop)
    verts, wj = [], []
    for depth, half, sx, wjaw in BAG_RINGS:
        r = lp.copy()
        r[:, 0] *= sx
        r[:, 1] += sd * half * prof
        r[:, 2] -= depth
        verts.append(r)
        low = 1.0 - smoothstep(-0.5 * half, 0.5 * half, sd * half * prof)
        wj.append(wjaw * low)
    back = np.array([[0.0, lp[:, 1].mean(), lp[:, 2].max() - 0.066]])
    verts.append(back)
    wj.append(np.array([0.3]))
    rings = [loop] + [offset + k * n + np.arange(n) for k in range(len(BAG_RINGS))]
    cap = offset + len(BAG_RINGS) * n
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
        top, edge = y_line + 0.0110, y_line + 0.0012
    else:
        top, edge = y_line - 0.0100, y_line - 0.0026
    cross = [(0.5 * t, top), (0.5 * t, edge + 0.25 * (top - edge)), (0.25 * t, edge),
             (-0.25 * t, edge), (-0.5 * t, edge + 0.25 * (top - edge)), (-0.5 * t, top)]
    verts = []
    for k in range(len(s)):
        for off, y in cross:
            verts.append((cx[k] + off * nx[k], y, cz[k] + off * nz[k]))
    verts = np.array(verts)
    nca = len(cross)
    faces = tube_faces(nca, len(s), offset)
    ends = np.array([verts[:nca].mean(0), verts[-nca:].mean(0)])
    c0, c1 = offset + len(verts), offset + len(verts) + 1
    last = offset + (len(s) - 1) * nca
    for m in range(nca):
        m1 = (m + 1) % nca
        faces.append((c0, offset + m1, offset + m))
        faces.append((c1, last + m, last + m1))
    return np.concatenate([verts, ends]), faces


def _lid_rings(m: np.ndarray, ec: np.ndarray, upper: np.ndarray, g: np.ndarray,
               p: OpenHeadParams) -> list:
    """Rings behind one eye's margin loop `m`: the rim's front, the lash tips, the lash roots and
    the rim's inner edge against the eyeball (each ring (n, 3))."""
    rel = m - ec
    rho = np.linalg.norm(rel, axis=1, keepdims=True)
    rh = rel / rho
    up = np.array([0.0, 1.0, 0.0]) - rh[:, 1:2] * rh  # towards the brow along the lid
    up /= np.linalg.norm(up, axis=1, keepdims=True)
    front = m - 0.0004 * rh
    # lashes: upper ones up and out, lower ones down and out; clumped by a ripple in |x|
    ripple = 1.0 + 0.12 * np.cos(2 * np.pi * np.abs(m[:, 0]) / 0.0017)
    length = np.where(upper, p.lash_upper, p.lash_lower) * np.maximum(g, 0.12) * ripple
    along = np.where(upper[:, None], 0.92 * rh + 0.40 * up, 0.90 * rh - 0.44 * up)
    tips = front + length[:, None] * along
    roots = m - 0.0007 * rh
    inner = ec + rh * (p.eyeball_radius + p.lid_rim_gap)
    return [front, tips, roots, inner]


def _build_lid_rims(skin: Skin, p: OpenHeadParams, offset: int):
    """Lid thickness and eyelashes: each eye's margin turns in to the eyeball, lashes on the way.

    Returns vertices, faces, face groups, and for each new vertex the margin vertex it follows and
    the scale of that vertex's offsets it takes (its distance from the eye centre over the
    margin's, so a lid rotation about the eye centre carries the rim exactly)."""
    verts, faces, groups, src, scale = [], [], [], [], []
    ring_groups = ("skin", "lashes", "lashes", "skin")
    n0 = offset
    for right in (False, True):
        loop = eye_loop(skin, right)
        n = len(loop)
        m = skin.pos[loop]
        ec = np.asarray(p.eye_centre) * [-1.0 if right else 1.0, 1.0, 1.0]
        upper = skin.side[loop] == 1
        n_up = int(upper.sum())
        g = np.zeros(n)
        g[1:n_up + 1] = np.sin(np.pi * np.arange(1, n_up + 1) / (n_up + 1)) ** 0.75
        n_lo = n - n_up - 2
        g[n_up + 2:] = np.sin(np.pi * np.arange(1, n_lo + 1) / (n_lo + 1)) ** 0.75
        rings = _lid_rings(m, ec, upper, g, p)
        idx = [loop] + [n0 + k * n + np.arange(n) for k in range(len(rings))]
        for a, b, grp in zip(idx[:-1], idx[1:], ring_groups):
            for k in range(n):
                k1 = (k + 1) % n
                faces += [(a[k1], a[k], b[k]), (a[k1], b[k], b[k1])]
                groups += [FACE_GROUPS.index(grp)] * 2
        rho_m = np.linalg.norm(m - ec, axis=1)
        for r in rings:
            verts.append(r)
            src.append(loop)
            scale.append(np.linalg.norm(r - ec, axis=1) / rho_m)
        n0 += len(rings) * n
    return (np.concatenate(verts), faces, np.array(groups, dtype=np.int8), np.concatenate(src),
            np.concatenate(scale))


# --------------------------------------------------------------------------------------------
# assembly


def _skin_jaw_weight(skin: Skin, xc: float, Y: np.ndarray, U: np.ndarray, p: OpenHeadParams):
    """Jaw share of each skin vertex: below the mouth line, lagging a little at the lower lip."""
    x, y, z = skin.pos[:, 0], skin.pos[:, 1], skin.pos[:, 2]
    lag = (1.0 - p.lower_lip_jaw_weight) * (1.0 - smoothstep(0.0, 0.012, -Y)) \
        * (1.0 - smoothstep(xc, 1.6 * xc, np.abs(x)))
    w = (1.0 - U) * (1.0 - lag)
    w *= smoothstep(-0.140, -0.108, y + 0.3 * np.maximum(0.0, z - 0.04))
    w *= smoothstep(-0.030, 0.005, z)
    return w


def _landmarks(skin: Skin, p: OpenHeadParams) -> dict:
    i_m, (jm0, jm1) = skin.i_mouth, skin.mouth_cols
    mid = int(np.argmin(np.abs(skin.u)))
    je0, je1 = skin.eye_cols
    g, _, _ = eye_angles(skin, p, right=False)
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


def _skin_face_groups(skin: Skin, p: OpenHeadParams) -> np.ndarray:
    """Lips among the skin faces, by grid quad, so their outline follows the rows (the brows are
    their own raised shells: `_build_brows`)."""
    nr, nc = skin.below.shape
    n_quads = (nr - 1) * nc
    q = np.arange(len(skin.faces)) // 2
    i, j = q // nc, q % nc
    grid = q < n_quads
    jm0, jm1 = skin.mouth_cols
    cols = (j >= jm0) & (j < jm1)
    lips = grid & cols & (i >= skin.i_mouth - p.lower_lip_rows) & (i < skin.i_mouth + p.upper_lip_rows)
    grp = np.zeros(len(skin.faces), dtype=np.int8)
    grp[lips] = FACE_GROUPS.index("lips")
    return grp


BROW_X = (0.012, 0.056)  # inner head and tail of each brow, m from the midline
BROW_STATIONS = 26  # cross-sections along each brow
# a brow's cross-section across its width (-1 lower edge .. +1 upper edge): the top of the hair
# mass at these positions, then back under it inside the skin (a closed, raised shell)
BROW_TOP = (-1.0, -0.6, -0.2, 0.2, 0.6, 1.0)
BROW_UNDER = (0.5, 0.0, -0.5)
BROW_HEIGHT, BROW_EDGE, BROW_SINK = 0.0009, 0.00008, 0.0004  # m above / below the skin


def brow_outline(s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Centre height and half width (m, head frame) of a brow at s = 0 (its head, by the nose)
    .. 1 (its tail): the centre rises from 18.5 mm to 21 mm at 60% of its length and falls to
    17 mm at the tail; the head is blunt (2.2 mm), the body 2.6 mm and the tail tapers to 0.3 mm."""
    s = np.asarray(s, dtype=np.float64)
    rise = 0.0185 + 0.0025 * np.sin(0.5 * np.pi * np.clip(s / 0.6, 0.0, 1.0))
    centre = np.where(s <= 0.6, rise, 0.021 - 0.004 * np.clip((s - 0.6) / 0.4, 0.0, 1.0) ** 1.5)
    half = (0.0022 + 0.0004 * smoothstep(0.0, 0.15, s)
            - 0.0023 * smoothstep(0.25, 1.0, s) ** 1.3)
    return centre, half


def _on_skin(skin: Skin, xy: np.ndarray):
    """The front skin under points (x, y) (N, 2), seen along -z: for each, the triangle's three
    vertex indices (N, 3) and barycentric weights (N, 3), the surface point (N, 3) and its
    smoothed normal (N, 3)."""
    faces = np.asarray(skin.faces)
    pos = skin.pos
    fv = pos[faces]
    front = (fv[:, :, 2].min(1) > 0.02) & (np.cross(fv[:, 1] - fv[:, 0], fv[:, 2] - fv[:, 0])[:, 2] > 0)
    faces, fv = faces[front], fv[front]
    a, b, c = fv[:, 0, :2], fv[:, 1, :2], fv[:, 2, :2]
    v0, v1 = b - a, c - a
    den = v0[:, 0] * v1[:, 1] - v0[:, 1] * v1[:, 0]
    d = xy[:, None, :] - a[None]
    w1 = (d[..., 0] * v1[None, :, 1] - d[..., 1] * v1[None, :, 0]) / den[None]
    w2 = (v0[None, :, 0] * d[..., 1] - v0[None, :, 1] * d[..., 0]) / den[None]
    w0 = 1.0 - w1 - w2
    inside = (w0 >= -1e-9) & (w1 >= -1e-9) & (w2 >= -1e-9)
    z = w0 * fv[None, :, 0, 2] + w1 * fv[None, :, 1, 2] + w2 * fv[None, :, 2, 2]
    k = np.argmax(np.where(inside, z, -np.inf), axis=1)  # the front-most triangle under each
    if not inside[np.arange(len(xy)), k].all():
        raise RuntimeError("a brow point lies off the front of the skin")
    r = np.arange(len(xy))
    w = np.stack([w0[r, k], w1[r, k], w2[r, k]], axis=1)
    tri = faces[k]
    vn = vertex_normals(pos, np.asarray(skin.faces))
    point = np.einsum("nk,nkc->nc", w, pos[tri])
    normal = np.einsum("nk,nkc->nc", w, vn[tri])
    return tri, w, point, normal / np.linalg.norm(normal, axis=1, keepdims=True)


def _build_brows(skin: Skin, offset: int):
    """Both brows as closed shells of hair raised on the skin along `brow_outline`, the right
    one the left's mirror image.

    Returns vertices, faces, face groups, and for each vertex the three skin vertices it rides
    on with their barycentric weights (it takes their offsets and skinning mixed so)."""
    s = np.linspace(0.0, 1.0, BROW_STATIONS)
    centre, half = brow_outline(s)
    x = BROW_X[0] + s * (BROW_X[1] - BROW_X[0])
    across = np.array(BROW_TOP + BROW_UNDER)
    y = centre[:, None] + half[:, None] * across[None]  # (S, ring)
    height = np.concatenate([BROW_EDGE + BROW_HEIGHT * np.sqrt(1.0 - np.asarray(BROW_TOP) ** 2),
                             np.full(len(BROW_UNDER), -BROW_SINK)])
    taper = 0.35 + 0.65 * (1.0 - smoothstep(0.55, 1.0, s))  # the tail's hair lies flatter
    xy = np.stack([np.broadcast_to(x[:, None], y.shape), y], axis=-1).reshape(-1, 2)
    ends = np.array([[x[0] - 0.0004, centre[0]], [x[-1] + 0.0002, centre[-1]]])  # cap centres
    tri, w, point, normal = _on_skin(skin, np.concatenate([xy, ends]))
    h = np.concatenate([(taper[:, None] * height[None]).reshape(-1), BROW_EDGE * np.array([1.0, 0.3])])
    left = point + normal * h[:, None]
    ring = len(across)
    mirror = mirror_map(skin.pos)
    verts, faces, leaders, weights = [], [], [], []
    n = offset
    for right in (False, True):
        v = left * [-1.0, 1.0, 1.0] if right else left
        f = tube_faces(ring, BROW_STATIONS, n, closed_along=False)
        c0, c1 = n + len(v) - 2, n + len(v) - 1
        last = n + (BROW_STATIONS - 1) * ring
        for m in range(ring):
            m1 = (m + 1) % ring
            f.append((c0, n + m1, n + m))
            f.append((c1, last + m, last + m1))
        verts.append(v)
        faces += fix_winding(v, f, n)
        leaders.append(mirror[tri] if right else tri)
        weights.append(w)
        n += len(v)
    groups = np.full(len(faces), FACE_GROUPS.index("brows"), dtype=np.int8)
    return np.concatenate(verts), faces, groups, np.concatenate(leaders), np.concatenate(weights)


# the left ear (the right one is its mirror image): its front edge (the tragus end) sinks into the
# skin's ear root at EAR_FRONT; it is EAR_SIZE (back-to-front, top-to-bottom) and leans back
# EAR_LEAN from vertical, in a plane turned EAR_FLARE out of the side of the head so its back rim
# stands off the skull
EAR_FRONT = (0.0712, -0.0060, -0.0030)
EAR_SIZE = (0.030, 0.060)
EAR_LEAN, EAR_FLARE = 14.0, 24.0  # degrees
EAR_AROUND = 28
# rings from the outer pole to the back pole: fraction of the outline (>1: the rolled rim), and
# whether the ring is on the outer face (relief) or the back
EAR_RINGS = ((0.12, 1), (0.24, 1), (0.36, 1), (0.48, 1), (0.58, 1), (0.67, 1), (0.75, 1),
             (0.82, 1), (0.88, 1), (0.93, 1), (0.97, 1), (1.02, 0.5), (0.97, 0), (0.82, 0),
             (0.6, 0), (0.35, 0))


def ear_relief(r: np.ndarray, theta: np.ndarray, lobe: np.ndarray) -> np.ndarray:
    """Height (m) of the ear's outer face over its base plane at outline fraction r and angle
    theta (0: back, pi/2: top, pi: the front edge): a base thickness, the helix rolled along the
    top and back, the antihelix ridge inside it, the hollow concha in front and a plain fleshy
    lobe (`lobe` 0..1 towards the bottom)."""
    deg = np.degrees(np.mod(theta + np.pi, 2 * np.pi) - np.pi)  # -180..180
    helix_on = smoothstep(-95.0, -55.0, deg) * (1.0 - smoothstep(140.0, 175.0, deg))
    anti_on = smoothstep(-60.0, -25.0, deg) * (1.0 - smoothstep(95.0, 130.0, deg))
    helix = 0.0036 * np.exp(-(((r - 0.91) / 0.075) ** 2)) * helix_on
    anti = 0.0022 * np.exp(-(((r - 0.63) / 0.09) ** 2)) * anti_on
    concha = 0.0040 * np.exp(-((r / 0.47) ** 2))
    tragus = 0.0030 * np.exp(-(((r - 0.80) / 0.12) ** 2) - ((deg + 160.0) / 18.0) ** 2)
    return 0.0042 + (1.0 - lobe) * (helix + anti - concha) + tragus + lobe * 0.0010


def _build_ears(offset: int):
    """Both ears as closed shells (outer face with helix, antihelix and concha; a flat back; a
    rolled rim) on a mesh with the topology of `ellipsoid_mesh`. They take no expression and
    ride the neck joint like the skin around them."""
    a, b = np.radians(EAR_FLARE), np.radians(EAR_LEAN)
    back = np.array([np.sin(a), 0.0, -np.cos(a)])  # along the ear plane, away from the face
    up = np.array([0.0, 1.0, 0.0])
    out = np.array([np.cos(a), 0.0, np.sin(a)])  # the ear plane's outward normal
    e_u, e_v = np.cos(b) * back - np.sin(b) * up, np.cos(b) * up + np.sin(b) * back
    theta = np.arange(EAR_AROUND) * (2 * np.pi / EAR_AROUND)
    ru, rv = 0.5 * EAR_SIZE[0], 0.5 * EAR_SIZE[1]
    lobe = smoothstep(0.35, 0.9, -np.sin(theta))  # towards the bottom of the outline
    ru_t = ru * (1.0 - 0.28 * lobe)  # the lobe is narrower than the top
    centre = np.asarray(EAR_FRONT) + ru * e_u

    def ring(r, face):
        uv_u, uv_v = r * ru_t * np.cos(theta), r * rv * np.sin(theta)
        h = (ear_relief(np.full_like(theta, r), theta, lobe) if face == 1 else
             np.full_like(theta, -0.0008) if face == 0 else
             0.5 * (ear_relief(np.ones_like(theta), theta, lobe) - 0.0008))
        return centre + uv_u[:, None] * e_u + uv_v[:, None] * e_v + h[:, None] * out

    rings = np.concatenate([ring(r, face) for r, face in EAR_RINGS])
    poles = [centre + ear_relief(np.zeros(1), np.zeros(1), np.zeros(1))[0] * out,
             centre - 0.0008 * out]
    left = np.concatenate([[poles[0]], rings, [poles[1]]])
    verts, faces, n = [], [], offset
    for right in (False, True):
        v = left * [-1.0, 1.0, 1.0] if right else left
        _, f, _ = ellipsoid_mesh(np.zeros(3), (1.0, 1.0, 1.0), EAR_AROUND, len(EAR_RINGS), n)
        verts.append(v)
        faces += fix_winding(v, f, n)
        n += len(v)
    return np.concatenate(verts), faces, _group("skin", len(faces))


def _group(name: str, n_faces: int) -> np.ndarray:
    return np.full(n_faces, FACE_GROUPS.index(name), dtype=np.int8)


@dataclass
class _Parts:
    """The head's meshes in the order they are appended, with face groups and jaw weights."""

    verts: list = field(default_factory=list)
    faces: list = field(default_factory=list)
    groups: list = field(default_factory=list)
    wjaw: list = field(default_factory=list)
    n: int = 0  # vertices so far: the next part's first index

    def add(self, verts: np.ndarray, faces: list, groups: np.ndarray, wjaw: np.ndarray) -> int:
        """Append one part (its faces already offset by `n`); return its first vertex index."""
        first = self.n
        self.verts.append(verts)
        self.faces += faces
        self.groups.append(groups)
        self.wjaw.append(wjaw)
        self.n += len(verts)
        return first


def _add_mouth_parts(parts: _Parts, skin: Skin, y_line: float) -> int:
    """The mouth bag, both dental arches and the tongue; return the bag's first vertex index."""
    bag_v, bag_f, bag_w, _ring1 = _build_bag(skin, parts.n)
    n_bag0 = parts.add(bag_v, bag_f, _group("mouth", len(bag_f)), bag_w)
    for upper in (True, False):
        n = parts.n
        tv, tf = _build_teeth(y_line, 0.0815 if upper else 0.0790, upper, n)
        tf = fix_winding(tv, tf, n)
        parts.add(tv, tf, _group("teeth", len(tf)), np.full(len(tv), 0.0 if upper else 1.0))
    n = parts.n
    tv, tf, _ = ellipsoid_mesh(np.array([0.0, y_line - 0.012, 0.050]), (0.020, 0.0075, 0.024),
                               16, 8, n)
    tf = fix_winding(tv, tf, n)
    parts.add(tv, tf, _group("tongue", len(tf)), np.full(len(tv), 1.0))
    return n_bag0


def _add_eyeballs(parts: _Parts, p: OpenHeadParams) -> list:
    """Both eyeballs, pupil, iris and white by angle from the front pole; their vertex ranges."""
    eye_rng = []
    for sgn in (1.0, -1.0):
        n = parts.n
        ec = np.asarray(p.eye_centre) * [sgn, 1, 1]
        ev, ef, _pol = ellipsoid_mesh(ec, (p.eyeball_radius,) * 3, 24, 0, n, EYE_POLAR_DEG)
        ef = fix_winding(ev, ef, n)
        # a face's angle from the front pole is its farthest vertex's, so the pupil's and the
        # iris's edges follow eyeball rings (EYE_POLAR_DEG holds both edges) and stay round
        vpol = np.degrees(np.arccos(np.clip((ev - ec)[:, 2] / p.eyeball_radius, -1, 1)))
        fpol = vpol[np.asarray(ef) - n].max(1)
        grp = np.where(fpol < PUPIL_DEG + 0.5, FACE_GROUPS.index("pupil"),
                       np.where(fpol < IRIS_DEG + 0.5, FACE_GROUPS.index("iris"),
                                FACE_GROUPS.index("eye_white")))
        parts.add(ev, ef, grp.astype(np.int8), np.zeros(len(ev)))
        eye_rng.append((n, n + len(ev)))
    return eye_rng


def _lbs_weights(v: np.ndarray, n_skin: int, wjaw: np.ndarray, eye_rng: list) -> np.ndarray:
    """(V, 5) skinning weights: global (neck cut), neck, jaw, and each eye for its eyeball."""
    nv = len(v)
    w_glob = np.zeros(nv)
    w_glob[:n_skin] = 1.0 - smoothstep(P.neck_cut_y + 0.006, P.neck_cut_y + 0.044, v[:n_skin, 1])
    wjaw *= 1.0 - w_glob
    lbs = np.zeros((nv, 5))
    lbs[:, 0] = w_glob
    lbs[:, 2] = wjaw
    lbs[:, 1] = 1.0 - w_glob - wjaw
    for k, (a, b) in enumerate(eye_rng):
        lbs[a:b] = 0.0
        lbs[a:b, 3 + k] = 1.0
    return lbs


def _head_model(skin: Skin, p: OpenHeadParams, v: np.ndarray, parts: _Parts, exp: np.ndarray,
                lbs: np.ndarray, mirror: np.ndarray) -> HeadModel:
    lm = _landmarks(skin, p)
    joints = np.array([p.global_joint, p.neck_joint, p.jaw_joint,
                       p.eye_centre, np.asarray(p.eye_centre) * [-1, 1, 1]], dtype=np.float64)
    return HeadModel(
        head_id=HEAD_ID,
        v_template=v.astype(np.float32),
        faces=np.asarray(parts.faces, dtype=np.int32),
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
            "face_group": np.concatenate(parts.groups).astype(np.int8),
            "face_group_names": np.array(FACE_GROUPS, dtype=str),
            "mirror_vertices": mirror.astype(np.int32),
        },
    )


def build_open_head(params: OpenHeadParams = P) -> HeadModel:
    """Build the open head (deterministic; about a second)."""
    p = params
    skin = build_skin(p)
    open_eyes(skin, p)
    xc, Y = mouth_frame(skin)
    U = upperness(skin, xc, Y, p)
    ch_left = channels_left(skin, p, xc, Y, U)  # drawn with the lips touching
    slit = (skin.row == skin.i_mouth) & (skin.side != 0)
    skin.pos[:, 1] += np.where(slit, skin.side * 0.5 * rest_gap(skin.pos[:, 0], xc, p), 0.0)
    y_line = float(skin.pos[skin.below[skin.i_mouth, int(np.argmin(np.abs(skin.u)))], 1])

    parts = _Parts()
    parts.add(skin.pos, skin.faces, _skin_face_groups(skin, p), _skin_jaw_weight(skin, xc, Y, U, p))
    n_bag0 = _add_mouth_parts(parts, skin, y_line)
    eye_rng = _add_eyeballs(parts, p)
    ear_v, ear_f, ear_g = _build_ears(parts.n)
    parts.add(ear_v, ear_f, ear_g, np.zeros(len(ear_v)))
    rim_v, rim_f, rim_g, rim_src, rim_scale = _build_lid_rims(skin, p, parts.n)
    n_rim0 = parts.add(rim_v, rim_f, rim_g, np.zeros(len(rim_v)))
    brow_v, brow_f, brow_g, brow_src, brow_w = _build_brows(skin, parts.n)
    n_brow0 = parts.add(brow_v, brow_f, brow_g, np.zeros(len(brow_v)))
    v = np.concatenate(parts.verts)
    lbs = _lbs_weights(v, len(skin.pos), np.concatenate(parts.wjaw), eye_rng)
    lbs[n_rim0:n_brow0] = lbs[rim_src]  # a rim vertex is skinned as its margin vertex
    lbs[n_brow0:] = np.einsum("nk,nkj->nj", brow_w, lbs[brow_src])  # a brow's, as its three
    mirror = mirror_map(v)
    # they take their skin vertices' offsets: (n, k) leaders and the weights of their offsets
    leaders = np.concatenate([np.repeat(rim_src[:, None], 3, axis=1), brow_src])
    weights = np.concatenate([np.pad(rim_scale[:, None], ((0, 0), (0, 2))), brow_w])
    followers = (np.arange(n_rim0, len(v)), leaders, weights)
    exp = expression_dirs(ch_left, v, len(skin.pos), n_bag0, mouth_loop(skin), mirror, p,
                          followers)
    return _head_model(skin, p, v, parts, exp, lbs, mirror)


def default_head_path() -> Path:
    """Path of the bundled open-head `.npz`; built (and cached) on first use if it is missing."""
    from .head_model import save_head

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


def preset_vector(name: str, exp_names=OPEN_HEAD_CHANNELS) -> tuple[np.ndarray, np.ndarray]:
    """A preset as (expression weights (E,), jaw axis-angle (3,)) in the order of `exp_names`."""
    preset = EXPRESSION_PRESETS[name]
    exp = np.array([float(preset.get(n, 0.0)) for n in exp_names], dtype=np.float32)
    return exp, np.array([float(preset.get("jaw", 0.0)), 0.0, 0.0], dtype=np.float32)
