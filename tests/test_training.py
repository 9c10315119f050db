"""gradlint.watch in a training loop (TensorBoard events read back, warnings on collapse), the
Lightning and Hugging Face adapters, and the one-line errors of the distributed helpers."""

from __future__ import annotations

import importlib.util
import logging
import warnings

import pytest
import torch
import torch.nn as nn

import gradlint
from gradlint.training.watch import GradientFlowWarning
from gradlint.verify.distributed import DistributedError, split_batch, torchrun_env


def _events(logdir) -> tuple[dict, dict]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    scalars, hists = {}, {}
    import pathlib

    for run in {p.parent for p in pathlib.Path(logdir).rglob("events.out.tfevents.*")}:
        acc = EventAccumulator(str(run), size_guidance={"scalars": 0, "histograms": 0})
        acc.Reload()
        for tag in acc.Tags()["scalars"]:
            scalars[tag] = [e.step for e in acc.Scalars(tag)]
        for tag in acc.Tags()["histograms"]:
            hists[tag] = [e.step for e in acc.Histograms(tag)]
    return scalars, hists


def _mlp(depth=3, act=nn.ReLU):
    torch.manual_seed(0)
    layers = []
    for _ in range(depth):
        layers += [nn.Linear(16, 16), act()]
    return nn.Sequential(*layers, nn.Linear(16, 2))


@pytest.mark.skipif(importlib.util.find_spec("tensorboard") is None, reason="tensorboard extra")
def test_watch_writes_tensorboard_events_every_n_steps(tmp_path):
    model = _mlp()
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    watcher = gradlint.watch(model, every=2, optimizer=opt, logdir=str(tmp_path))
    for _ in range(5):
        opt.zero_grad()
        model(torch.randn(8, 16)).pow(2).mean().backward()
        opt.step()
    watcher.close()
    assert [s for s, _ in watcher.history] == [1, 3, 5]
    assert [lm.module for lm in watcher.history[0][1].layers] == ["0", "2", "4", "6"]  # forward order
    scalars, hists = _events(tmp_path)
    assert scalars["grad_norm/0"] == [1, 3, 5]
    assert scalars["grad_ratio/6"] == [1, 3, 5]
    assert hists["grad_log10_abs/4"] == [1, 3, 5]


def test_watch_warns_when_the_gradient_collapses_and_falls_back_to_logging(caplog):
    model = _mlp(depth=12, act=nn.Sigmoid)
    watcher = gradlint.watch(model, every=1, writer=logging.getLogger("gradlint.test"))
    model(torch.randn(8, 16)).sum().backward()
    with warnings.catch_warnings(record=True) as caught, caplog.at_level(logging.INFO, "gradlint.test"):
        warnings.simplefilter("always")
        m = watcher.step()
        watcher.step()  # the same finding is not repeated while it lasts
    assert m.verdict == "vanishing"
    flagged = [w for w in caught if issubclass(w.category, GradientFlowWarning)]
    codes = [str(w.message).split()[3] for w in flagged]
    assert "GL301" in codes and len(codes) == len(set(codes))  # each once, not again on the second step
    assert "gradlint step 1: attenuation" in caplog.text


def test_measure_refuses_a_mix_of_ddp_and_fsdp_and_a_missing_process_group():
    class FullyShardedDataParallel(nn.Module):  # stands for FSDP1 by its class name
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(4, 4)

    class DistributedDataParallel(nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.module = inner

    with pytest.raises(DistributedError, match="mixes DistributedDataParallel and FSDP"):
        gradlint.measure(DistributedDataParallel(FullyShardedDataParallel()), torch.randn(2, 4))
    with pytest.raises(DistributedError, match="no process group is initialized"):
        gradlint.measure(DistributedDataParallel(nn.Linear(4, 4)), torch.randn(2, 4))
    with pytest.raises(DistributedError, match="FSDP1"):
        gradlint.measure(FullyShardedDataParallel(), torch.randn(2, 4))


def test_torchrun_environment_and_batch_split():
    assert torchrun_env({}) is None
    assert torchrun_env({"RANK": "1", "WORLD_SIZE": "2", "LOCAL_RANK": "1", "MASTER_ADDR": "h", "MASTER_PORT": "1"}) \
        == {"rank": 1, "world_size": 2, "local_rank": 1}
    with pytest.raises(DistributedError, match="MASTER_ADDR"):
        torchrun_env({"RANK": "0", "WORLD_SIZE": "2", "MASTER_PORT": "1"})
    x, ids = torch.arange(8).view(4, 2), torch.arange(4)
    args, kwargs, batch = split_batch((x,), {"ids": ids, "flag": True}, 1, 2)
    assert batch == 4 and args[0].tolist() == [[4, 5], [6, 7]] and kwargs["ids"].tolist() == [2, 3]
    with pytest.raises(DistributedError, match="global batch of 4 does not split evenly across 3 ranks"):
        split_batch((x,), {}, 0, 3)


@pytest.mark.skipif(importlib.util.find_spec("lightning") is None, reason="lightning extra")
def test_lightning_callback_watches_the_training(tmp_path):
    import lightning as L

    from gradlint.training.lightning import GradlintCallback

    class Module(L.LightningModule):
        def __init__(self):
            super().__init__()
            self.net = _mlp()

        def training_step(self, batch, idx):
            return self.net(batch[0]).pow(2).mean()

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.01)

    data = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(torch.randn(32, 16)), batch_size=8)
    cb = GradlintCallback(every=2, logdir=str(tmp_path / "tb"))
    trainer = L.Trainer(max_steps=4, callbacks=[cb], logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False, accelerator="cpu",
                        default_root_dir=str(tmp_path))
    trainer.fit(Module(), data)
    assert [s for s, _ in cb.watcher.history] == [0, 2]
    scalars, _ = _events(tmp_path / "tb")
    assert scalars["grad_norm/net.0"] == [0, 2]


@pytest.mark.skipif(importlib.util.find_spec("transformers") is None or importlib.util.find_spec("accelerate") is None,
                    reason="hf extra")
def test_hf_trainer_callback_watches_the_training(tmp_path):
    from transformers import Trainer, TrainingArguments

    from gradlint.training.hf import GradlintTrainerCallback

    class Model(nn.Module):
        def __init__(self):
            super().__init__()
            self.net = _mlp()

        def forward(self, x, labels=None):
            out = self.net(x)
            return {"loss": out.pow(2).mean(), "logits": out}

    class Data(torch.utils.data.Dataset):
        def __len__(self):
            return 32

        def __getitem__(self, i):
            return {"x": torch.randn(16), "labels": torch.zeros(2)}

    cb = GradlintTrainerCallback(every=2)
    args = TrainingArguments(output_dir=str(tmp_path), max_steps=4, per_device_train_batch_size=8, report_to=[],
                             save_strategy="no", use_cpu=True, logging_strategy="no", disable_tqdm=True)
    Trainer(model=Model(), args=args, train_dataset=Data(), callbacks=[cb]).train()
    assert [s for s, _ in cb.watcher.history] == [1, 3]
    scalars, _ = _events(tmp_path / "gradlint")
    assert scalars["grad_norm/net.0"] == [1, 3]
