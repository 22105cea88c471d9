"""ARKit's mouthClose on a character sculpted the ARKit way: a corrective on top of jawOpen.

Apple's mouthClose shape closes the lips that jawOpen parted: on a Face Cap, Ready Player Me or
MetaHuman style head, mouthClose at weight w moves the lips together by about the distance
jawOpen at weight w moves them apart, so with the jaw shut it pushes them through each other
(the lower lip ends above the upper). ARKit capture therefore never reports mouthClose above
jawOpen. Our models learnt mouthClose on the open head, where it is a small press of the lips
that is right with the jaw shut; their bilabials come with the jaw closed and mouthClose at
0.2-0.4, which on an ARKit-sculpted head opens the mouth by a third of its width.

So on a head whose mouthClose moves the lips together by more than `THROUGH` times their rest
gap (it would cross them), the baked mouthClose is capped at the jawOpen the head receives.
The open head's own mouthClose (about its rest gap) is left alone.
"""

from __future__ import annotations

import numpy as np

from . import channels

THROUGH = 2.0  # mouthClose closing the lips by more than this many rest gaps: a jaw corrective


def closes_through(head) -> bool:
    """Whether the head's mouthClose at full weight moves its inner lips together by more than
    THROUGH times their rest gap (a shape made to be used with jawOpen). `head` is a HeadModel
    with the inner-lip landmarks; False when it has no mouthClose."""
    names = [channels.canonical(n) for n in head.exp_names]
    if "mouthClose" not in names or "lip_upper_inner" not in head.landmark_names:
        return False
    up, low = head.landmark("lip_upper_inner"), head.landmark("lip_lower_inner")
    v = np.asarray(head.v_template, dtype=np.float64)
    d = np.asarray(head.exp_dirs[:, :, names.index("mouthClose")], dtype=np.float64)
    gap = v[up] - v[low]  # points from the lower lip to the upper
    rest = float(np.linalg.norm(gap))
    if rest <= 0:
        return True
    closing = float(np.dot(d[low] - d[up], gap / rest))  # how far they come together
    return closing > THROUGH * rest


def jaw_open_values(cmap: channels.ChannelMap, exp: np.ndarray, jaw: np.ndarray):
    """The jawOpen the head receives per frame (None when nothing opens its jaw)."""
    from ..model_runtime.heads.arkit_channels import JAW_OPEN_FULL_RAD

    if cmap.jaw_open_key or cmap.jaw_bone:
        return channels.jaw_to_open(jaw[:, 0], JAW_OPEN_FULL_RAD)
    for col, key in cmap.shape_keys.items():
        if channels.canonical(key) == "jawOpen":
            return np.asarray(exp[:, col], dtype=np.float64)
    return None


def capped(obj, result: dict, cmap: channels.ChannelMap) -> dict:
    """`result` with its mouthClose column capped at the head's jawOpen when `obj`'s mouthClose
    is a jaw corrective (module docstring); unchanged otherwise."""
    names = [channels.canonical(str(n)) for n in result["exp_names"]]
    if "mouthClose" not in names:
        return result
    col = names.index("mouthClose")
    if col not in cmap.shape_keys and not any(c == col for terms in cmap.mixes.values()
                                              for c, _w in terms):
        return result
    exp = np.asarray(result["exp"])
    jaw_open = jaw_open_values(cmap, exp, np.asarray(result["jaw"]))
    if jaw_open is None:
        return result
    from . import retargeting

    head = retargeting.head_model_of(obj)
    if head is None or not closes_through(head):
        return result
    out = np.array(exp, copy=True)
    out[:, col] = np.minimum(out[:, col], jaw_open.astype(out.dtype))
    return {**result, "exp": out}
