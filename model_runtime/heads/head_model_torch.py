"""Vertex evaluation of a head model in torch, vectorised over batch and frames (for training)."""

from __future__ import annotations

import torch

from .head_model import HeadModel


class TorchHead(torch.nn.Module):
    """A head model's arrays as torch buffers; `forward(exp, jaw)` gives vertices."""

    def __init__(self, head: HeadModel, vertex_subset=None):
        super().__init__()
        idx = slice(None) if vertex_subset is None else torch.as_tensor(vertex_subset)
        f32 = lambda a: torch.as_tensor(a, dtype=torch.float32)  # noqa: E731
        self.register_buffer("v_template", f32(head.v_template)[idx])
        self.register_buffer("exp_dirs", f32(head.exp_dirs)[idx])
        self.register_buffer("joints", f32(head.joints))
        self.register_buffer("lbs_weights", f32(head.lbs_weights)[idx])
        self.register_buffer("pose_dirs", None if head.pose_dirs is None else f32(head.pose_dirs)[idx])
        self.parents = [int(p) for p in head.parents]
        self.jaw_index = head.jaw_index

    def forward(self, exp: torch.Tensor, jaw: torch.Tensor) -> torch.Tensor:
        """exp (..., E), jaw (..., 3) axis-angle -> vertices (..., V, 3)."""
        lead = exp.shape[:-1]
        exp = exp.reshape(-1, exp.shape[-1])
        jaw = jaw.reshape(-1, 3)
        N, J = exp.shape[0], len(self.parents)
        v = self.v_template + torch.einsum("vce,ne->nvc", self.exp_dirs, exp)
        rot = torch.eye(3, device=exp.device, dtype=exp.dtype).expand(N, J, 3, 3).clone()
        rot[:, self.jaw_index] = axis_angle_to_matrix(jaw)
        if self.pose_dirs is not None:
            feat = (rot[:, 1:] - torch.eye(3, device=exp.device)).reshape(N, -1)
            v = v + torch.einsum("vcp,np->nvc", self.pose_dirs, feat)
        R_world, t_world = [], []
        for j, p in enumerate(self.parents):
            if p < 0:
                R_world.append(rot[:, j])
                t_world.append(self.joints[j].expand(N, 3))
            else:
                R_world.append(R_world[p] @ rot[:, j])
                t_world.append(torch.einsum("nab,b->na", R_world[p], self.joints[j] - self.joints[p])
                               + t_world[p])
        R = torch.stack(R_world, 1)  # (N, J, 3, 3)
        t = torch.stack(t_world, 1) - torch.einsum("njab,jb->nja", R, self.joints)
        Rv = torch.einsum("vj,njab->nvab", self.lbs_weights, R)
        tv = torch.einsum("vj,nja->nva", self.lbs_weights, t)
        out = torch.einsum("nvab,nvb->nva", Rv, v) + tv
        return out.reshape(*lead, -1, 3)


def axis_angle_to_matrix(aa: torch.Tensor) -> torch.Tensor:
    """Rodrigues in torch, safe (finite gradient) at zero angle."""
    angle = torch.sqrt((aa * aa).sum(-1, keepdim=True) + 1e-16)
    axis = aa / angle
    x, y, z = axis.unbind(-1)
    zero = torch.zeros_like(x)
    K = torch.stack([zero, -z, y, z, zero, -x, -y, x, zero], -1).reshape(*aa.shape[:-1], 3, 3)
    s = torch.sin(angle)[..., None]
    c = torch.cos(angle)[..., None]
    eye = torch.eye(3, device=aa.device, dtype=aa.dtype).expand_as(K)
    return eye + s * K + (1 - c) * (K @ K)
