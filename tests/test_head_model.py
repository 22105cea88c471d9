"""Head-model evaluation (numpy and torch), the `.npz` round trip and validation errors."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from emote.model_runtime.errors import EmoteInputError
from emote.model_runtime.heads.head_model import (HeadModel, axis_angle_to_matrix, evaluate, load_head,
                                            save_head, validate)
from tests.helpers import synthetic_flame_dict

E = 10


def _head(pose_dirs: bool = True) -> HeadModel:
    """A FLAME-like head built straight from arrays (no pickle involved)."""
    c = synthetic_flame_dict(n_exp=E, n_shape=0, seed=1)
    marks = c["_facts"]["landmarks"]
    return HeadModel(
        head_id="synthetic",
        v_template=c["v_template"].astype(np.float32),
        faces=c["f"].astype(np.int32),
        exp_names=[f"exp{i:03d}" for i in range(E)],
        exp_dirs=(c["shapedirs"] * 5).astype(np.float32),
        joint_names=["global", "neck", "jaw", "eye_left", "eye_right"],
        joints=(c["J_regressor"] @ c["v_template"]).astype(np.float32),
        parents=np.array([-1, 0, 1, 1, 1]),
        lbs_weights=c["weights"].astype(np.float32),
        landmark_names=list(marks),
        landmark_vertices=np.array(list(marks.values())),
        pose_dirs=(c["posedirs"] * 10).astype(np.float32) if pose_dirs else None,
        extra={"uv": np.linspace(0, 1, 6, dtype=np.float32).reshape(3, 2)},
    )


@pytest.fixture(scope="module")
def head():
    return _head()


def _motion(T=6, seed=0):
    rng = np.random.default_rng(seed)
    exp = rng.normal(0, 1.5, (T, E)).astype(np.float32)
    jaw = rng.normal(0, 0.25, (T, 3)).astype(np.float32)
    jaw[0] = 0  # includes the zero rotation, where Rodrigues divides by the angle
    return exp, jaw


def test_numpy_and_torch_agree(head):
    torch = pytest.importorskip("torch", reason="TorchHead needs torch")
    from emote.model_runtime.heads.head_model_torch import TorchHead

    torch.set_num_threads(1)
    exp, jaw = _motion()
    for h in (head, dataclasses.replace(head, pose_dirs=None)):
        want = evaluate(h, exp, jaw)
        got = TorchHead(h)(torch.from_numpy(exp), torch.from_numpy(jaw)).numpy()
        assert got.shape == want.shape == (len(exp), h.num_vertices, 3)
        np.testing.assert_allclose(got, want, atol=1e-5)
    # batch dimensions and a vertex subset give the same numbers
    subset = np.array([5, 17, head.landmark("lip_lower_inner")])
    th = TorchHead(head, vertex_subset=subset)
    got = th(torch.from_numpy(exp).reshape(2, 3, E), torch.from_numpy(jaw).reshape(2, 3, 3))
    np.testing.assert_allclose(got.reshape(6, 3, 3).numpy(), evaluate(head, exp, jaw)[:, subset],
                               atol=1e-5)


def test_torch_gradient_is_finite_at_zero_jaw(head):
    torch = pytest.importorskip("torch", reason="TorchHead needs torch")
    from emote.model_runtime.heads.head_model_torch import TorchHead

    jaw = torch.zeros(1, 3, requires_grad=True)
    TorchHead(head)(torch.zeros(1, E), jaw).sum().backward()
    assert torch.isfinite(jaw.grad).all()


def test_rest_pose_is_the_template(head):
    out = evaluate(head, np.zeros((2, E)), np.zeros((2, 3)))
    np.testing.assert_allclose(out, np.broadcast_to(head.v_template, out.shape), atol=1e-7)


def test_expression_is_linear_without_jaw(head):
    exp, _ = _motion()
    out = evaluate(head, exp, np.zeros((len(exp), 3)))
    want = head.v_template + np.einsum("vce,te->tvc", head.exp_dirs, exp)
    np.testing.assert_allclose(out, want, atol=1e-6)


def test_jaw_rotates_jaw_vertices_rigidly_about_the_jaw_joint():
    head = _head(pose_dirs=False)
    angle = 0.3
    out = evaluate(head, np.zeros(E), np.array([angle, 0, 0]))[0]
    w = head.lbs_weights[:, head.jaw_index].astype(np.float64)
    v = head.v_template.astype(np.float64)
    j = head.joints[head.jaw_index].astype(np.float64)
    c, s = np.cos(angle), np.sin(angle)
    R = np.array([[1, 0, 0], [0, c, -s], [0, s, c]])
    rigid = (v - j) @ R.T + j
    still, full = w == 0, w == 1
    assert still.sum() > 50 and full.sum() > 5 and (~still & ~full).sum() > 0
    np.testing.assert_allclose(out[still], v[still], atol=1e-7)
    np.testing.assert_allclose(out[full], rigid[full], atol=1e-6)
    # partly jaw-weighted vertices blend linearly between rest and rigid (linear blend skinning)
    np.testing.assert_allclose(out, (1 - w)[:, None] * v + w[:, None] * rigid, atol=1e-6)
    # distances between fully jaw-bound vertices are kept (rigid)
    a, b = np.flatnonzero(full)[:2]
    assert np.isclose(np.linalg.norm(out[a] - out[b]), np.linalg.norm(v[a] - v[b]), atol=1e-7)
    # a positive rotation about +x opens the mouth: the lower lip goes down, the upper stays
    lo, up = head.landmark("lip_lower_inner"), head.landmark("lip_upper_inner")
    assert out[lo, 1] < v[lo, 1] - 1e-3 and np.allclose(out[up], v[up], atol=1e-7)


def test_pose_correctives_follow_the_flame_pose_feature(head):
    jaw = np.array([0.2, -0.1, 0.05])
    plain = evaluate(dataclasses.replace(head, pose_dirs=None), np.zeros(E), jaw)[0]
    with_pd = evaluate(head, np.zeros(E), jaw)[0]
    feature = np.zeros((4, 3, 3))
    feature[head.jaw_index - 1] = axis_angle_to_matrix(jaw) - np.eye(3)  # row-major (R - I)
    offsets = np.einsum("vcp,p->vc", head.pose_dirs, feature.reshape(-1))
    assert np.abs(offsets).max() > 1e-3
    # vertices skinned only to the root move by exactly the corrective offset
    root_only = head.lbs_weights[:, 0] == 1
    assert root_only.sum() > 50
    np.testing.assert_allclose(with_pd[root_only] - plain[root_only], offsets[root_only], atol=1e-6)


def test_pose_argument_drives_other_joints(head):
    pose = np.zeros((1, 5, 3))
    pose[0, 0] = [0, np.pi / 2, 0]  # global turn by 90 degrees about +y
    out = evaluate(dataclasses.replace(head, pose_dirs=None), np.zeros(E), np.zeros(3), pose=pose)
    R = axis_angle_to_matrix(pose[0, 0])
    root = head.joints[0]
    np.testing.assert_allclose(out[0], (head.v_template - root) @ R.T + root, atol=1e-6)


def test_axis_angle_to_matrix_is_a_rotation():
    aa = np.random.default_rng(0).normal(0, 1, (20, 3))
    R = axis_angle_to_matrix(aa)
    np.testing.assert_allclose(R @ np.swapaxes(R, -1, -2), np.broadcast_to(np.eye(3), R.shape),
                               atol=1e-12)
    np.testing.assert_allclose(np.linalg.det(R), 1, atol=1e-12)
    np.testing.assert_allclose(R @ aa[..., None], aa[..., None], atol=1e-12)  # axis is fixed
    np.testing.assert_allclose(axis_angle_to_matrix(np.zeros(3)), np.eye(3))


def test_save_load_round_trip_and_same_bytes(head, tmp_path):
    save_head(head, tmp_path / "a.npz")
    save_head(head, tmp_path / "b.npz")
    assert (tmp_path / "a.npz").read_bytes() == (tmp_path / "b.npz").read_bytes()
    again = load_head(tmp_path / "a.npz")
    for f in dataclasses.fields(HeadModel):
        want, got = getattr(head, f.name), getattr(again, f.name)
        if f.name == "extra":
            assert set(got) == {"uv"}
            np.testing.assert_array_equal(got["uv"], want["uv"])
        elif isinstance(want, np.ndarray):
            np.testing.assert_array_equal(got, want)
        else:
            assert got == want, f.name
    save_head(again, tmp_path / "c.npz")
    assert (tmp_path / "c.npz").read_bytes() == (tmp_path / "a.npz").read_bytes()
    exp, jaw = _motion()
    np.testing.assert_array_equal(evaluate(again, exp, jaw), evaluate(head, exp, jaw))
    assert not list(tmp_path.glob("*.tmp"))


def test_head_without_pose_dirs_round_trips(tmp_path):
    head = _head(pose_dirs=False)
    save_head(head, tmp_path / "h.npz")
    assert load_head(tmp_path / "h.npz").pose_dirs is None


@pytest.mark.parametrize("change, words", [
    (dict(v_template=np.zeros((5, 2), np.float32)), "v_template has shape"),
    (dict(faces=np.array([[0, 1, 10**6]], np.int32)), "faces index vertices"),
    (dict(exp_names=["a"]), "exp_dirs has shape"),
    (dict(joint_names=["global", "neck", "chin", "eye_left", "eye_right"]), "no joint is named"),
    (dict(parents=np.array([-1, 0, 3, 1, 1])), "parents must list"),
    (dict(lbs_weights=np.zeros((3, 5), np.float32)), "lbs_weights has shape"),
    (dict(landmark_names=["lip_upper_inner", "x", "y", "z"]), "missing landmarks"),
    (dict(landmark_vertices=np.array([0, 1, 2, 10**6])), "a landmark indexes"),
    (dict(pose_dirs=np.zeros((3, 3, 36), np.float32)), "pose_dirs has shape"),
])
def test_validate_names_the_problem(head, change, words):
    with pytest.raises(EmoteInputError) as err:
        validate(dataclasses.replace(head, **change))
    assert err.value.kind == "bad_head_model" and words in err.value.message


def test_validate_rejects_non_finite_values(head):
    bad = head.exp_dirs.copy()
    bad[0, 0, 0] = np.nan
    with pytest.raises(EmoteInputError, match="NaN"):
        validate(dataclasses.replace(head, exp_dirs=bad))


def test_load_head_errors(head, tmp_path):
    with pytest.raises(EmoteInputError) as err:
        load_head(tmp_path / "missing.npz")
    assert err.value.kind == "missing_file"
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(EmoteInputError) as err:
        load_head(tmp_path / "junk.npz")
    assert err.value.kind == "bad_head_model" and "Cannot read" in err.value.message
    np.savez(tmp_path / "partial.npz", v_template=head.v_template, faces=head.faces)
    with pytest.raises(EmoteInputError) as err:
        load_head(tmp_path / "partial.npz")
    assert err.value.kind == "bad_head_model" and "exp_dirs" in err.value.message
    # an .npz holding a pickled object array is refused, not unpickled
    np.savez(tmp_path / "obj.npz", **{k: np.array([{"a": 1}], dtype=object) for k in
                                      ("head_id", "v_template")})
    with pytest.raises(EmoteInputError):
        load_head(tmp_path / "obj.npz")
