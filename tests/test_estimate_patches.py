"""unfold/fold (im2col/col2im, as in VOLO's outlook attention) against the measurement."""

from __future__ import annotations

import math
import statistics

from helpers import estimate_and_measurement

PATCHES = """
import torch
import torch.nn as nn
import torch.nn.functional as F


class Net(nn.Module):
    '''Each block mixes every 3x3 neighbourhood with a Linear over the unfolded patch, then folds
    the patches back (overlaps add up), with a residual around it.'''
    def __init__(self, c=8, depth=4):
        super().__init__()
        self.stem = nn.Conv2d(3, c, 3, padding=1)
        self.mix = nn.ModuleList([nn.Linear(c * 9, c * 9) for _ in range(depth)])
        self.head = nn.Linear(c, 10)

    def forward(self, x):
        x = self.stem(x)
        n, c, h, w = x.shape
        for mix in self.mix:
            cols = F.unfold(x, 3, padding=1)                      # n, c*9, h*w
            cols = torch.relu(mix(cols.transpose(1, 2))).transpose(1, 2)
            x = x + F.fold(cols, (h, w), 3, padding=1) / 9
        return self.head(x.mean((2, 3)))


def example_inputs():
    return (torch.randn(8, 3, 12, 12),)
"""


def test_unfold_and_fold_are_estimated_close_to_the_measurement(tmp_path):
    path = tmp_path / "acc_patches.py"
    path.write_text(PATCHES, encoding="utf-8")
    model, est, measured = estimate_and_measurement(path)
    assert model.estimate.unhandled == []
    errors = [abs(math.log10(e / m)) for e, m in zip(est[:-1], measured[:-1])]
    assert statistics.median(errors) < 0.25, list(zip(est, measured))
