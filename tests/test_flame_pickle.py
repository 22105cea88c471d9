"""FLAME `.pkl` loading: restricted unpickling, field mapping, landmarks and clear errors."""

from __future__ import annotations

import os
import pickle

import numpy as np
import pytest

from emote.model_runtime.errors import EmoteInputError
from emote.model_runtime.heads.flame_pickle import find_mouth_landmarks, load_flame
from emote.model_runtime.heads.head_model import evaluate, load_head, save_head
from emote.model_runtime.safe_pickle import safe_loads
from tests.helpers import synthetic_flame_dict, write_synthetic_flame

N_EXP = 12


@pytest.fixture(scope="module")
def flame_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("flame") / "generic_model.pkl"
    content = write_synthetic_flame(path, n_exp=N_EXP)
    return path, content


def _rodrigues(aa):
    angle = np.linalg.norm(aa)
    if angle < 1e-12:
        return np.eye(3)
    k = aa / angle
    K = np.array([[0, -k[2], k[1]], [k[2], 0, -k[0]], [-k[1], k[0], 0]])
    return np.eye(3) + np.sin(angle) * K + (1 - np.cos(angle)) * K @ K


def _flame_reference(c, exp, pose):
    """FLAME's forward pass written from its published definition (as the smplx `lbs` does it):
    shaped = template + blendshapes; joints from the shaped mesh; posedirs flattened (V*3, 36)
    and transposed; pose feature (R_j - I) of joints 1..4; kinematic chain; skinning."""
    n_shape = c["shapedirs"].shape[2] - N_EXP
    v_shaped = c["v_template"] + c["shapedirs"][:, :, n_shape:] @ exp
    J = c["J_regressor"] @ v_shaped
    R = np.stack([_rodrigues(p) for p in pose])
    feature = (R[1:] - np.eye(3)).reshape(-1)
    posedirs = c["posedirs"].reshape(-1, 36).T
    v_posed = v_shaped + (feature @ posedirs).reshape(-1, 3)
    parents = [-1, 0, 1, 1, 1]
    G = [None] * 5
    for j in range(5):
        local = np.eye(4)
        local[:3, :3] = R[j]
        local[:3, 3] = J[j] - (J[parents[j]] if j else 0)
        G[j] = local if j == 0 else G[parents[j]] @ local
    A = np.stack(G)
    A[:, :3, 3] -= np.einsum("jab,jb->ja", A[:, :3, :3], J)
    T = np.einsum("vj,jab->vab", c["weights"], A)
    return np.einsum("vab,vb->va", T[:, :3, :3], v_posed) + T[:, :3, 3]


def test_loads_flame_fields_exactly(flame_file):
    path, c = flame_file
    head = load_flame(path)
    assert head.head_id == "flame2020"
    np.testing.assert_allclose(head.v_template, c["v_template"], atol=1e-7)
    np.testing.assert_array_equal(head.faces, c["f"].astype(np.int32))
    np.testing.assert_allclose(head.exp_dirs, c["shapedirs"][:, :, 300:], atol=1e-9)
    np.testing.assert_allclose(head.pose_dirs, c["posedirs"], atol=1e-9)
    np.testing.assert_allclose(head.joints, c["J_regressor"] @ c["v_template"], atol=1e-7)
    np.testing.assert_allclose(head.lbs_weights, c["weights"], atol=1e-7)
    assert head.exp_names == [f"exp{i:03d}" for i in range(N_EXP)]
    assert head.joint_names == ["global", "neck", "jaw", "eye_left", "eye_right"]
    assert head.jaw_index == 2
    assert list(head.parents) == [-1, 0, 1, 1, 1]
    assert head.joints[head.joint_names.index("eye_left"), 0] > 0  # +x is the subject's left


def test_landmarks_are_the_inner_lips_and_mouth_corners(flame_file):
    path, c = flame_file
    head = load_flame(path)
    assert {n: head.landmark(n) for n in c["_facts"]["landmarks"]} == c["_facts"]["landmarks"]
    v = head.v_template
    assert v[head.landmark("lip_upper_inner"), 1] > v[head.landmark("lip_lower_inner"), 1]
    assert v[head.landmark("mouth_corner_left"), 0] > 0 > v[head.landmark("mouth_corner_right"), 0]


def test_find_mouth_landmarks_needs_a_mouth_hole():
    octahedron_v = np.array([[1, 0, 0], [-1, 0, 0], [0, 1, 0], [0, -1, 0], [0, 0, 1], [0, 0, -1.]])
    octahedron_f = np.array([[0, 2, 4], [2, 1, 4], [1, 3, 4], [3, 0, 4],
                             [2, 0, 5], [1, 2, 5], [3, 1, 5], [0, 3, 5]])
    with pytest.raises(ValueError, match="midline"):
        find_mouth_landmarks(octahedron_v, octahedron_f)


def test_loaded_head_evaluates_like_flame(flame_file):
    """Our evaluate() on the loaded head equals FLAME's own forward pass for any pose (this pins
    the posedirs layout, kintree and joint regression); with expression and no pose as well."""
    path, c = flame_file
    head = load_flame(path)
    rng = np.random.default_rng(3)
    pose = rng.normal(0, 0.2, (5, 3))
    got = evaluate(head, np.zeros(N_EXP), pose[2], pose=pose[None])[0]
    np.testing.assert_allclose(got, _flame_reference(c, np.zeros(N_EXP), pose), atol=1e-6)
    exp = rng.normal(0, 1.0, N_EXP)
    got = evaluate(head, exp, np.zeros(3))[0]
    np.testing.assert_allclose(got, _flame_reference(c, exp, np.zeros((5, 3))), atol=1e-6)
    # FLAME's joints follow the expression-deformed mesh; the loader records that in extra
    np.testing.assert_allclose(head.extra["joint_exp_dirs"] @ exp,
                               c["J_regressor"] @ (c["shapedirs"][:, :, 300:] @ exp), atol=1e-6)


def test_n_exp_head_id_and_round_trip(flame_file, tmp_path):
    path, c = flame_file
    head = load_flame(path, n_exp=5, head_id="myflame")
    assert head.head_id == "myflame" and len(head.exp_names) == 5
    np.testing.assert_allclose(head.exp_dirs, c["shapedirs"][:, :, 300:305], atol=1e-9)
    save_head(head, tmp_path / "h.npz")
    again = load_head(tmp_path / "h.npz")
    np.testing.assert_array_equal(again.exp_dirs, head.exp_dirs)
    assert again.landmark_names == head.landmark_names
    with pytest.raises(EmoteInputError, match="13 were asked") as err:
        load_flame(path, n_exp=13)
    assert err.value.kind == "bad_head_model"


def test_flame2023_name_reduced_shape_count_and_shape_coefficients(tmp_path):
    path = tmp_path / "flame2023.pkl"
    c = write_synthetic_flame(path, n_exp=4, version="2023", n_shape=20, py2_style=False)
    with pytest.raises(EmoteInputError, match="n_shape"):
        load_flame(path, n_shape=24)
    betas = np.linspace(-1, 1, 20)
    head = load_flame(path, n_shape=20, shape=betas)
    assert head.head_id == "flame2023" and len(head.exp_names) == 4
    shaped = c["v_template"] + c["shapedirs"][:, :, :20] @ betas
    np.testing.assert_allclose(head.v_template, shaped, atol=1e-7)
    np.testing.assert_allclose(head.joints, c["J_regressor"] @ shaped, atol=1e-7)


def test_legacy_module_spellings_load(flame_file, tmp_path):
    """Files from other numpy/scipy eras name the same classes differently."""
    path, c = flame_file
    data = path.read_bytes()
    assert b"scipy.sparse._csc\ncsc_matrix" in data and b"numpy.core.multiarray\n" in data
    data = data.replace(b"scipy.sparse._csc\n", b"scipy.sparse.csc\n")
    data = data.replace(b"numpy.core.multiarray\n", b"numpy._core.multiarray\n")
    out = safe_loads(data)
    np.testing.assert_array_equal(out["J_regressor"], c["J_regressor"])
    np.testing.assert_array_equal(out["shapedirs"], c["shapedirs"])
    assert out["bs_style"] == "lbs"


def test_sparse_csr_coo_and_protocol_0_pickles():
    sp = pytest.importorskip("scipy.sparse", reason="scipy writes the sparse test data")
    dense = np.array([[0, 2.0, 0], [1.5, 0, 0], [0, 0, -3.0], [0, 4.0, 0]])
    for proto in (0, 2, 4):
        obj = {"csr": sp.csr_matrix(dense), "coo": sp.coo_matrix(dense),
               "csc": sp.csc_matrix(dense), "s": {1, 2}}
        out = safe_loads(pickle.dumps(obj, protocol=proto))
        for key in ("csr", "coo", "csc"):
            np.testing.assert_array_equal(out[key], dense)
        assert out["s"] == {1, 2}


class _Payload:  # code-asking pickles, for both callers: tests/test_safe_pickle.py
    def __init__(self, func, args):
        self.func, self.args = func, args

    def __reduce__(self):
        return self.func, self.args


def test_extra_allowed_names_are_resolved_only_when_given(tmp_path):
    data = pickle.dumps({"c": _Payload(complex, (1, 2))}, protocol=2)  # builtins.complex allowed
    assert safe_loads(data)["c"] == 1 + 2j
    data = pickle.dumps(_Payload(os.path.join, ("a", "b")), protocol=2)
    with pytest.raises(EmoteInputError, match="join"):
        safe_loads(data)
    name = f"{os.path.join.__module__}.join"
    assert safe_loads(data, extra_allowed={name: lambda *a: "/".join(a)}) == "a/b"


def test_truncated_empty_and_non_pickle_files(flame_file, tmp_path):
    path, _ = flame_file
    cut = tmp_path / "cut.pkl"
    cut.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    for bad in (cut, tmp_path / "empty.pkl", tmp_path / "text.pkl"):
        if bad.name == "empty.pkl":
            bad.write_bytes(b"")
        elif bad.name == "text.pkl":
            bad.write_text("v 0 0 0\nf 1 2 3\n")
        with pytest.raises(EmoteInputError) as err:
            load_flame(bad)
        assert err.value.kind == "unreadable_file", bad
        assert "not a complete pickle" in err.value.message and bad.name in err.value.message
    with pytest.raises(EmoteInputError) as err:
        load_flame(tmp_path / "nowhere.pkl")
    assert err.value.kind == "missing_file" and "nowhere.pkl" in err.value.message


def _plain_flame(tmp_path, **changes):
    content = synthetic_flame_dict(n_exp=3, n_shape=300)
    content.pop("_facts")
    for key, value in changes.items():
        if value is None:
            content.pop(key)
        else:
            content[key] = value
    path = tmp_path / "generic_model.pkl"
    path.write_bytes(pickle.dumps(content, protocol=2))
    return path


@pytest.mark.parametrize("field", ["J_regressor", "posedirs", "weights", "kintree_table"])
def test_missing_field_is_named(tmp_path, field):
    with pytest.raises(EmoteInputError) as err:
        load_flame(_plain_flame(tmp_path, **{field: None}))
    assert err.value.kind == "bad_head_model"
    assert f"lacks the field(s) {field}" in err.value.message


def test_wrong_shapes_and_contents_are_named(tmp_path):
    c = synthetic_flame_dict(n_exp=3, n_shape=300)
    V = len(c["v_template"])
    cases = {
        "posedirs": np.zeros((V, 3, 30)),
        "weights": np.zeros((V, 4)),
        "J_regressor": np.zeros((5, V + 1)),
        "f": np.array([[0, 1, V]]),
        "v_template": np.full((V, 3), np.nan),
        "shapedirs": np.zeros((V, 3, 300)),
        "kintree_table": np.array([[4294967295, 0, 3, 1, 1], [0, 1, 2, 3, 4]]),
    }
    for field, value in cases.items():
        with pytest.raises(EmoteInputError) as err:
            load_flame(_plain_flame(tmp_path, **{field: value}))
        assert err.value.kind == "bad_head_model" and field in err.value.message, field
    path = tmp_path / "list.pkl"
    path.write_bytes(pickle.dumps([1, 2], protocol=2))
    with pytest.raises(EmoteInputError, match="not FLAME's dictionary"):
        load_flame(path)


def test_eye_joints_are_named_by_position(tmp_path):
    """A file whose eye joints come in the other order still gets eye_left at +x."""
    c = synthetic_flame_dict(n_exp=3, n_shape=300)
    swap = [0, 1, 2, 4, 3]
    path = _plain_flame(tmp_path, J_regressor=c["J_regressor"][swap], weights=c["weights"][:, swap])
    head = load_flame(path)
    assert head.joint_names == ["global", "neck", "jaw", "eye_right", "eye_left"]
    assert head.joints[4, 0] > 0 > head.joints[3, 0]
