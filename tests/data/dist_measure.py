"""Run under torchrun by tests/test_distributed.py: gradlint.measure on the same model wrapped in
DDP and sharded with FSDP2, each rank with its half of the batch; writes one JSON per rank."""

import json
import sys

import torch
import torch.distributed as dist
import torch.nn as nn

import gradlint


class Block(nn.Module):
    def __init__(self, d):
        super().__init__()
        self.fc = nn.Linear(d, d)
        self.act = nn.Tanh()

    def forward(self, x):
        return self.act(self.fc(x))


class Net(nn.Module):
    def __init__(self, d=31, depth=4):
        super().__init__()
        self.inp = nn.Linear(16, d)
        self.relu = nn.ReLU()
        self.blocks = nn.ModuleList([Block(d) for _ in range(depth)])
        self.head = nn.Linear(d, 5)

    def forward(self, x):
        x = self.relu(self.inp(x))
        for b in self.blocks:
            x = b(x)
        return self.head(x)


def record(m):
    return {"layers": [[lm.module, lm.grad_ratio, lm.zeros, lm.hist, lm.delta_norm] for lm in m.layers],
            "activations": sorted([a.key, a.count, a.inactive, a.units, a.dead_units, a.saturated]
                                  for a in m.activations),
            "verdict": m.verdict, "notes": m.notes}


def model_and_batch():
    torch.manual_seed(0)
    return Net(), torch.randn(8, 16) * 3


if __name__ == "__main__":
    out = sys.argv[1]
    dist.init_process_group("gloo")
    rank, world = dist.get_rank(), dist.get_world_size()
    rows = slice(rank * 8 // world, (rank + 1) * 8 // world)
    result = {}

    from torch.nn.parallel import DistributedDataParallel as DDP
    model, x = model_and_batch()
    result["ddp"] = record(gradlint.measure(DDP(model), x[rows]))

    from torch.distributed.fsdp import fully_shard
    model, x = model_and_batch()
    for b in model.blocks:
        fully_shard(b)
    fully_shard(model)
    result["fsdp2"] = record(gradlint.measure(model, x[rows]))
    with open(f"{out}.{rank}.json", "w") as f:
        json.dump(result, f)
    dist.barrier()  # as gradlint's own stop(): a rank tearing gloo down before its peer is done aborts
    dist.destroy_process_group()
