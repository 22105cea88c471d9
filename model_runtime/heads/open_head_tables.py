"""The open head's numbers: geometry parameters, the expression-channel table, mesh and preset data.

open_head.py builds the head from these; nothing here computes anything. Coordinates as in FLAME
(metres, y up, +z out of the face, +x to the subject's left).

The channel table. Each subject's-left or symmetric channel is a list of displacement terms, applied
in order to a zero field over the skin vertices (open_head_channels.apply_channel):

- `Move(along, factors)`: add the product of `factors` along an axis (X, UP, FWD), a constant
  vector, or a per-vertex direction field;
- `Turn(factors)`: rotate the left eye's lid vertices about the eye centre by the product (rad).

A factor is a number, the name of a per-vertex field (below), a falloff (`G`, `Spot`, `Corner`,
`Ramp`), a `Mix` (sum of products) or a tuple (a product taken first, as a region). Products are
taken left to right, so the table reproduces the generator's arithmetic exactly.

Fields (open_head_channels.channel_fields): x, y, z, ax = |x|; Y = height above the mouth line;
U = upperness (1 above the mouth line, 0 below), L = 1 - U, U_minus_L; front (faces forward);
sign_x, x_over_xc (x over the mouth-corner x); below_line = max(-Y, 0), above_line = max(Y, 0);
slit_gap (half the rest gap on the lip edges); upper_lip, lower_lip, lips (vermilion weights);
lid_shape, lid_upper, lid_lower, lid_lower_near (left eyelid weights); blink (lids to closed) and
out (unit vector out of the cheek) as direction fields; and the REGIONS below.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

HEAD_ID = "open_head_v1"
FACE_GROUPS = ("skin", "lips", "brows", "mouth", "teeth", "tongue", "eye_white", "iris", "pupil",
               "lashes")
DEG = np.pi / 180.0


@dataclass(frozen=True)
class OpenHeadParams:
    """Every number the generator's geometry uses (metres, degrees where named so); the channel
    displacements are in LEFT_CHANNELS."""

    centre: tuple = (0.0, -0.010, 0.0)  # rays are cast from here
    neck_cut_y: float = -0.162
    # the neck's base flares into the start of the shoulders (x) and the chest and nape (z) from
    # collar_top down to the cut, so the bust ends in a clean collar rather than a tube
    collar_top: float = -0.105
    collar_flare_x: float = 0.40
    collar_flare_z: float = 0.12
    # latitude rows: (from_deg, to_deg, points) segments, bottom to top
    rows: tuple = ((-74, -50, 8), (-50, -37, 7), (-37, -19, 19), (-19, -1, 13), (-1, 20, 17),
                   (20, 46, 9), (46, 84, 6))
    # longitude columns on one side: (to_deg, points) segments from 0 to 180
    cols: tuple = ((45, 35), (75, 11), (180, 15))
    # mouth
    mouth_y: float = -0.062
    mouth_z: float = 0.092
    mouth_corner_deg: float = 17.0
    rest_gap: float = 0.0010  # lips apart at the centre at rest
    lip_rows: int = 9  # grid rows on each side of the mouth that taper towards the corners
    lip_taper: float = 0.9
    upper_lip_rows: int = 5  # vermilion height in rows
    lower_lip_rows: int = 4
    crease_depth: float = 0.0025
    bow_peak_deg: float = 0.55  # Cupid's bow: the upper vermilion border's peaks either side
    bow_dip_deg: float = 0.35  # and its central dip, as latitude shifts of the border row
    border_ridge: float = 0.0005  # the white roll along the vermilion borders (outward)
    # eyes
    eye_centre: tuple = (0.031, 0.000, 0.056)  # left eye; the right one is its mirror
    eyeball_radius: float = 0.011
    lid_radius: float = 0.0138
    lid_meet_deg: float = -6.0  # where closed lids meet, seen from the eye centre
    lid_upper_open_deg: float = 28.0  # upper lid travel from closed to rest
    lid_lower_open_deg: float = 10.0
    lid_rows_upper: int = 10
    # radial offsets of the upper lid's rows 1, 2, ... above the margin: the crease, then the fold
    lid_crease: tuple = (0.0, 0.0, -0.0006, -0.0009, -0.0002, 0.0010, 0.0020)
    lid_rows_lower: int = 4
    eye_inner_deg: float = 62.0  # horizontal half-angles of the corners around the eye
    eye_outer_deg: float = 70.0
    # lid thickness: the margin turns in towards the eyeball, ending this far outside it
    lid_rim_gap: float = 0.0015
    lash_upper: float = 0.0048  # eyelash length at the middle of the upper and lower lids
    lash_lower: float = 0.0022
    # jaw
    jaw_joint: tuple = (0.0, -0.012, -0.004)
    neck_joint: tuple = (0.0, -0.085, -0.018)
    global_joint: tuple = (0.0, -0.170, -0.012)
    lower_lip_jaw_weight: float = 0.62


P = OpenHeadParams()

# mouth bag rings behind the lips: (depth behind the lips, half height, width scale, jaw weight)
BAG_RINGS = ((0.003, 0.004, 1.00, 0.75), (0.008, 0.011, 1.12, 0.90), (0.018, 0.015, 1.25, 1.0),
             (0.038, 0.014, 1.15, 0.9), (0.058, 0.009, 0.75, 0.6))
PUPIL_DEG, IRIS_DEG = 10.0, 30.0  # edges of the pupil and the iris, from the eyeball's front pole
EYE_POLAR_DEG = (5, 10, 16, 23, 30, 36, 45, 60, 75, 90, 110, 130, 150, 170)  # eyeball rings


# --------------------------------------------------------------------------------------------
# channel table: factor and term types


class G(NamedTuple):
    """Gaussian falloff exp(-(field - at)^2 / 2 sigma^2) of one per-vertex field."""

    field: str
    sigma: float
    at: float = 0.0


class Spot(NamedTuple):
    """Gaussian falloff of the distance from (x, y) in the x-y plane."""

    x: float
    y: float
    sigma: float


class Corner(NamedTuple):
    """Gaussian falloff of the 3-D distance from the left mouth corner (plus `offset`)."""

    sigma: float
    offset: tuple = (0.0, 0.0, 0.0)


class Ramp(NamedTuple):
    """Smooth step of a field from 0 at e0 to 1 at e1."""

    field: str
    e0: float
    e1: float


class Mix(NamedTuple):
    """Sum of products (each a tuple of factors)."""

    terms: tuple


class Move(NamedTuple):
    """Add the product of `factors` along an axis, a constant vector or a direction field."""

    along: int | tuple | str
    factors: tuple


class Turn(NamedTuple):
    """Rotate the left lid vertices about the eye centre by the product of `factors` (rad)."""

    factors: tuple


class Channel(NamedTuple):
    """One expression channel: its ARKit name, what it does, and its terms in order."""

    name: str
    does: str
    terms: tuple


X, UP, FWD = 0, 1, 2

# Named regions (weights over the skin), evaluated in this order into the fields.
REGIONS = (
    ("mouth", (G("x", 0.026), G("Y", 0.012))),
    ("cheek", (G("ax", 0.014, at=0.042), G("y", 0.016, at=-0.050), "front")),
    ("chin_band", (G("x", 0.018),)),
    ("brow", (G("x", 0.016, at=0.028), G("y", 0.011, at=0.019), "front")),
)

_MOUTH_SLIDE = (G("x", 0.022), G("Y", 0.013), "front")
_ROLL_LOWER = ("L", G("x", 0.017), G("Y", 0.0075))
_ROLL_UPPER = ("U", G("x", 0.017), G("Y", 0.0065))
_PRESS_LEFT = Ramp("x", -0.012, 0.012)
_LIP_LEFT = G("x", 0.011, at=0.011)
_PUFF = (G("ax", 0.013, at=0.040), G("y", 0.016, at=-0.055), "front")
_CHEEK_SQUINT = (G("x", 0.019, at=0.037), G("y", 0.014, at=-0.018), "front")
_NOSE_SIDE = Ramp("z", 0.04, 0.06)

LEFT_CHANNELS = (
    Channel("jawOpen", "soft-tissue corrective on top of the jaw rotation", (
        Move(X, (-0.07, "x", "mouth")),
        Move(UP, (0.0009, "U", G("Y", 0.006), G("x", 0.02))),
        Move(UP, (0.15, "below_line", "lower_lip")),
        Move(UP, (-0.0024, "cheek")),
        Move(X, (-0.0012, "sign_x", "cheek")),
        Move(FWD, (-0.0012, "U", G("Y", 0.008), "chin_band")),
    )),
    Channel("mouthClose", "lips meet (the only channel narrowing the lip gap), purse slightly", (
        Move(UP, (-1.0, "slit_gap")),
        Move(UP, (-0.12, "Y", "lips")),
        Move(FWD, (0.0022, "lips")),
    )),
    Channel("mouthFunnel", "lips flare into an open O", (
        Move(X, (-0.2, "x", G("x", 0.030), G("Y", 0.013))),
        Move(FWD, (0.004, G("x", 0.018), G("Y", 0.011))),
        Move(FWD, (0.002, "lips")),
        Move(UP, (0.0028, "U_minus_L", G("x", 0.012), G("Y", 0.008))),
    )),
    Channel("mouthPucker", "lips pushed forward and together, mouth narrow", (
        Move(X, (-0.26, "x", G("x", 0.030), G("Y", 0.014))),
        Move(FWD, (0.0062, G("x", 0.016), G("Y", 0.010))),
        Move(UP, (-0.25, "Y", G("x", 0.02), G("Y", 0.009))),
        Move(X, (-0.001, "sign_x", "cheek")),
    )),
    Channel("mouthLeft", "the closed mouth slides to the subject's left", (
        Move(X, (0.0055, _MOUTH_SLIDE)),
        Move(FWD, (-0.0016, "x_over_xc", _MOUTH_SLIDE)),
    )),
    Channel("mouthSmile_L", "the corner pulls up and back, the cheek bunches", (
        Move((0.0120, 0.0150, -0.0066), (Corner(0.011),)),
        Move((0.0013, 0.0075, 0.0044), (Spot(0.036, -0.034, 0.0135), "front")),
    )),
    Channel("mouthFrown_L", "the corner pulls down", (
        Move((0.0035, -0.0168, -0.0018), (Corner(0.015, offset=(0.002, -0.004, -0.002)),)),
        Move(UP, (-0.0042, Spot(0.018, -0.090, 0.014), "front")),
    )),
    Channel("mouthDimple_L", "the corner pulls back into a dimple", (
        Move((0.0055, 0.0008, -0.0088), (Corner(0.0104),)),
    )),
    Channel("mouthStretch_L", "the corner pulls out, the lower lip down", (
        Move((0.0099, -0.0036, -0.0018), (Corner(0.012),)),
        Move(UP, (-0.0015, "L", G("x", 0.010, at=0.015), G("Y", 0.008))),
    )),
    Channel("mouthRollLower", "the lower lip rolls in over the teeth", (
        Move(UP, (0.5, "below_line", _ROLL_LOWER)),
        Move(FWD, (-0.0036, _ROLL_LOWER)),
    )),
    Channel("mouthRollUpper", "the upper lip rolls in", (
        Move(UP, (-0.5, "above_line", _ROLL_UPPER)),
        Move(FWD, (-0.0032, _ROLL_UPPER)),
    )),
    Channel("mouthShrugLower", "chin raiser pushes the lower lip (and with it the upper) up", (
        Move(UP, (0.003, "chin_band", Mix((("L", G("Y", 0.014)), ("U", G("Y", 0.004)))))),
        Move(FWD, (0.0022, "chin_band", "L", G("Y", 0.012, at=-0.02))),
    )),
    Channel("mouthShrugUpper", "the upper lip pushed up and out", (
        Move(UP, (0.0025, "chin_band", "U", G("Y", 0.007))),
        Move(FWD, (0.0022, "chin_band", "U", G("Y", 0.007))),
    )),
    Channel("mouthPress_L", "lips pressed thin on the left", (
        Move(UP, (-0.6, "Y", G("Y", 0.007), G("x", 0.022), _PRESS_LEFT)),
        Move(UP, (0.0008, G("x", 0.022), G("Y", 0.008), _PRESS_LEFT)),
        Move(FWD, (-0.0010, G("x", 0.022), G("Y", 0.008), _PRESS_LEFT)),
    )),
    Channel("mouthLowerDown_L", "the lower lip pulled down on the left", (
        Move(UP, (-0.0045, _LIP_LEFT, "L", G("Y", 0.011))),
        Move(FWD, (0.0010, _LIP_LEFT, "L", G("Y", 0.011))),
    )),
    Channel("mouthUpperUp_L", "the upper lip raised on the left", (
        Move(UP, (0.0045, _LIP_LEFT, "U", G("Y", 0.009))),
        Move(FWD, (0.0008, _LIP_LEFT, "U", G("Y", 0.009))),
        Move(UP, (0.0010, Spot(0.020, -0.040, 0.006), "front")),
    )),
    Channel("browDown_L", "the brow lowers hard and draws in, the skin between the brows bunches; "
            "the upper lid follows only partly", (
        Move((-0.0050, -0.0085, 0.0016), (G("x", 0.016, at=0.028), G("y", 0.013, at=0.019), "front",
                                          Ramp("y", 0.0, 0.014))),
        Move((0.0, -0.0033, 0.0012), (G("x", 0.008, at=0.014), G("y", 0.011, at=0.016), "front")),
        Move(FWD, (0.0040, G("x", 0.006, at=0.010), G("y", 0.006, at=0.014), "front")),
    )),
    Channel("browInnerUp", "the inner brows rise and the skin above them bunches", (
        Move(UP, (0.0150, G("ax", 0.020, at=0.013), G("y", 0.020, at=0.024), "front",
                  Ramp("y", -0.004, 0.014))),
        Move(FWD, (0.0050, G("ax", 0.010, at=0.012), G("y", 0.008, at=0.030), "front")),
    )),
    Channel("browOuterUp_L", "the outer brow rises", (
        Move(UP, (0.0090, G("x", 0.012, at=0.046), G("y", 0.013, at=0.020), "front")),
    )),
    Channel("cheekPuff", "the cheeks blow out", (
        Move("out", (0.006, _PUFF)),
        Move((0.0, 0.0, 1.0), (0.001, ("mouth", "front"))),
    )),
    Channel("cheekSquint_L", "the cheek rises and bunches under the eye; the lower lid turns up with it", (
        Move((0.0, 0.0105, 0.0042), _CHEEK_SQUINT + (Ramp("y", -0.003, -0.013),)),
        Turn(("lid_shape", 8.0, "lid_lower", DEG)),
    )),
    Channel("noseSneer_L", "the nostril and the side of the nose lift and wrinkle", (
        Move((0.0017, 0.0140, 0.0026), (Spot(0.013, -0.030, 0.010), _NOSE_SIDE)),
        Move((0.0, 0.0046, 0.0), (Spot(0.009, -0.004, 0.009), _NOSE_SIDE)),
        Move(FWD, (0.0040, Spot(0.012, -0.014, 0.007), _NOSE_SIDE)),
    )),
    Channel("eyeBlink_L", "the lids close exactly", (
        Move("blink", ()),
    )),
    Channel("eyeSquint_L", "the lower lid rises, the upper drops, the skin at the outer corner bunches", (
        Turn(("lid_shape", Mix(((20.0, "lid_lower_near"), (-10.0, "lid_upper"))), DEG)),
        Move(X, (-0.0015, Spot(0.049, 0.0, 0.012), "front")),
        Move(FWD, (0.0030, Spot(0.050, -0.004, 0.008), "front")),
    )),
    Channel("eyeWide_L", "the upper lid opens wide, the brow lifts a little", (
        Turn(("lid_shape", Mix(((15.6, "lid_upper"), (-3.9, "lid_lower"))), DEG)),
        Move(UP, (0.0013, "brow")),
    )),
)


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
