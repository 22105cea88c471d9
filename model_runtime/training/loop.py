"""A resumable, time-capped training loop shared by every stage, with progress lines."""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch


@dataclass
class StageResult:
    """What a stage did: steps run, seconds spent, and the logged loss history."""
    name: str
    steps: int
    seconds: float
    history: list = field(default_factory=list)  # [(step, {name: value}), ...]

    def mean_of(self, key: str, first: bool, n: int = 5) -> float:
        """Mean of a logged value over the first or last n log points."""
        vals = [h[1][key] for h in self.history if key in h[1]]
        part = vals[:n] if first else vals[-n:]
        return float(np.mean(part)) if part else float("nan")


def _state_path(work: Path, name: str) -> Path:
    return work / name / "state.pt"


def run_stage(name: str, work: str | Path, modules: dict[str, torch.nn.Module],
              params: list, step_fn: Callable[[int], tuple[torch.Tensor, dict]], steps: int,
              lr: float, budget_s: float = math.inf, log_every: int = 20,
              ckpt_every_s: float = 120.0, val_fn: Callable[[], dict] | None = None,
              samplers: tuple = (), log: Callable[[str], None] = print,
              grad_clip: float = 1.0, stop_at: int | None = None) -> StageResult:
    """Train `params` with Adam for `steps` steps (or until `budget_s` seconds), resumably.

    step_fn(step) returns (loss, logs). State (weights, optimiser, step, elapsed, sampler RNGs,
    history) is saved to `work/name/state.pt` every `ckpt_every_s` seconds and at the end; a
    finished stage is loaded instead of retrained. Learning rate: linear warm-up, cosine decay
    over `steps`; `stop_at` ends the stage after that many of them (early stopping: the learning
    rate follows the whole schedule up to there).
    """
    work = Path(work)
    path = _state_path(work, name)
    path.parent.mkdir(parents=True, exist_ok=True)
    opt = torch.optim.Adam(params, lr=lr)
    # params: tensors, or Adam parameter groups (dicts with "params" and their own "lr")
    tensors = [t for g in params for t in (g["params"] if isinstance(g, dict) else [g])]
    warm = max(1, min(100, steps // 20))
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / warm) * (0.1 + 0.9 * 0.5 * (1 + math.cos(
            math.pi * min(s, steps) / max(steps, 1)))))
    step, elapsed, history = 0, 0.0, []
    if path.is_file():
        st = torch.load(path, map_location="cpu", weights_only=True)
        for k, m in modules.items():
            m.load_state_dict(st["modules"][k])
        history = json.loads(st["history"])
        step, elapsed = int(st["step"]), float(st["elapsed"])
        if st.get("done"):
            log(f"[{name}] already finished ({step} steps); loaded")
            return StageResult(name, step, elapsed, history)
        opt.load_state_dict(st["optim"])
        sched.load_state_dict(st["sched"])
        for s, state in zip(samplers, json.loads(st["rng"])):
            s.rng.bit_generator.state = state
        log(f"[{name}] resuming at step {step} ({elapsed:.0f} s done)")

    def save(done: bool) -> None:
        st = {"modules": {k: m.state_dict() for k, m in modules.items()}, "optim": opt.state_dict(),
              "sched": sched.state_dict(), "step": step, "elapsed": elapsed, "done": done,
              "history": json.dumps(history),
              "rng": json.dumps([s.rng.bit_generator.state for s in samplers])}
        tmp = path.with_name("state.tmp")
        torch.save(st, tmp)
        tmp.replace(path)

    for m in modules.values():
        m.train()
    t_start, t_ckpt = time.time() - elapsed, time.time()
    acc: dict[str, list] = {}
    end = steps if not stop_at else min(steps, stop_at)
    while step < end and elapsed < budget_s:
        loss, logs = step_fn(step)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if grad_clip:
            torch.nn.utils.clip_grad_norm_(tensors, grad_clip)
        opt.step()
        sched.step()
        step += 1
        elapsed = time.time() - t_start
        for k, v in logs.items():
            acc.setdefault(k, []).append(float(v))
        if step % log_every == 0 or step == steps:
            mean = {k: float(np.mean(v)) for k, v in acc.items()}
            history.append((step, mean))
            acc = {}
            txt = " ".join(f"{k} {v:.4g}" for k, v in mean.items())
            log(f"[{name}] step {step}/{steps} {txt} lr {sched.get_last_lr()[0]:.2e} "
                f"elapsed {elapsed / 60:.1f} min")
        if time.time() - t_ckpt > ckpt_every_s:
            save(False)
            t_ckpt = time.time()
    if acc:
        history.append((step, {k: float(np.mean(v)) for k, v in acc.items()}))
    for m in modules.values():
        m.eval()
    if val_fn is not None:
        with torch.no_grad():
            val = val_fn()
        history.append((step, {f"val_{k}": v for k, v in val.items()}))
        log(f"[{name}] val " + " ".join(f"{k} {v:.4g}" for k, v in val.items()))
    save(True)
    log(f"[{name}] done: {step} steps in {elapsed / 60:.1f} min")
    return StageResult(name, step, elapsed, history)


def classifier_step_and_val(batch_loss, sampler, val_sampler, batch: int, device: str,
                            val_batches: int = 4):
    """Step and validation functions of a classifier stage whose `batch_loss(b)` gives (ce, acc)."""

    def step(_):
        ce, acc = batch_loss(sampler.sample(batch, device))
        return ce, {"ce": ce.item(), "acc": acc.item()}

    def val():
        vals = [batch_loss(val_sampler.sample(batch, device)) for _ in range(val_batches)]
        return {"ce": float(sum(v[0] for v in vals) / val_batches),
                "acc": float(sum(v[1] for v in vals) / val_batches)}

    return step, (val if val_sampler else None)
