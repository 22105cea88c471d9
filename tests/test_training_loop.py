"""The shared training loop: `stop_at` ends a stage early on the schedule of all its steps."""

from __future__ import annotations

import math

import torch

from emote.model_runtime.training.loop import run_stage


def _stage(work, stop_at=None, steps=40):
    torch.manual_seed(0)
    net = torch.nn.Linear(2, 1)
    lrs = []

    def step(_):
        loss = (net(torch.ones(1, 2)) ** 2).mean()
        return loss, {"loss": loss.item()}

    res = run_stage("demo", work, {"net": net}, list(net.parameters()), step, steps, lr=0.1,
                    log=lrs.append, log_every=1, stop_at=stop_at)
    return res, lrs


def test_stop_at_ends_early_with_the_full_schedules_learning_rate(tmp_path):
    res, lines = _stage(tmp_path / "a", stop_at=10)
    assert res.steps == 10
    # the learning rate logged at step 10 is that of a 40-step schedule, not of a 10-step one
    lr = float(next(x for x in lines if " step 10/40 " in x).split(" lr ")[1].split()[0])
    warm = 2  # max(1, min(100, 40 // 20))
    want = 0.1 * min(1.0, 11 / warm) * (0.1 + 0.45 * (1 + math.cos(math.pi * 10 / 40)))
    assert abs(lr - want) / want < 2e-3  # logged to 3 digits
    assert lr > 0.05  # a 10-step schedule would have decayed to 0.01 by now
    assert any("done: 10 steps" in x for x in lines)
    # the stopped stage counts as finished: a rerun loads it
    again, lines = _stage(tmp_path / "a", stop_at=10)
    assert again.steps == 10 and any("already finished" in x for x in lines)


def test_without_stop_at_every_step_runs(tmp_path):
    res, _ = _stage(tmp_path / "b", steps=12)
    assert res.steps == 12
