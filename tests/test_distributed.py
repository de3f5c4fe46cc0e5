"""The training loop under torch.distributed (gloo, 2 CPU processes) equals one process with the
global batch."""


import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn

from maelib.data import TensorLoader
from maelib.train import TrainConfig, fit


def _problem():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(64, 5, generator=g)
    return x, x @ torch.randn(5, 1, generator=g)


def _model():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(5, 8), nn.ReLU(), nn.Linear(8, 1))


def _step(m, b):
    return nn.functional.mse_loss(m(b[0]), b[1])


def _worker(rank, world, init, out):
    dist.init_process_group("gloo", init_method=init, rank=rank, world_size=world)
    try:
        model = _model()
        h = fit(model, _step, TensorLoader(_problem(), 4, shuffle=True, seed=2, drop_last=True),
                TrainConfig(epochs=2, lr=1e-2, seed=2, weight_decay=0.0), progress=False)
        torch.save({"weights": [p.detach() for p in model.parameters()], "loss": list(h["loss"])}, f"{out}.{rank}")
    finally:
        dist.destroy_process_group()


@pytest.mark.slow
def test_two_gloo_processes_match_one_process_with_the_global_batch(tmp_path):
    out = str(tmp_path / "w")
    mp.spawn(_worker, args=(2, f"file://{tmp_path / 'init'}", out), nprocs=2, join=True)
    r0, r1 = torch.load(f"{out}.0"), torch.load(f"{out}.1")
    for a, b in zip(r0["weights"], r1["weights"]):
        assert torch.equal(a, b)  # the ranks stay in sync
    single = _model()
    fit(single, _step, TensorLoader(_problem(), 8, shuffle=True, seed=2, drop_last=True),
        TrainConfig(epochs=2, lr=1e-2, seed=2, weight_decay=0.0), progress=False)
    for a, b in zip(r0["weights"], single.parameters()):
        assert torch.allclose(a, b.detach(), atol=1e-5)
