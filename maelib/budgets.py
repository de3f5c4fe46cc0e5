"""What each arm's training cost, where the MAE arm's pretraining ran on other images than its fine-tuning.

An image MAE pretrains on the labelled images and unlabelled ones besides (Chapter 1), or on another dataset
altogether (Chapter 3's transfer), so a pretraining pass and a supervised pass see different numbers of
images. :class:`Pretraining` counts the pretraining on its own images; :func:`matched_epochs` gives the
compute-matched scratch arm the supervised epochs of the same FLOPs; :func:`arm_budget` tabulates every arm.
"""

from __future__ import annotations

from dataclasses import dataclass

from .train import Arm, budget


@dataclass(frozen=True)
class Pretraining:
    """The pretraining the MAE arm's encoder had, which its budget counts: ``passes`` over ``images`` images
    in ``steps`` optimizer steps, at ``flops_per_image`` forward and backward FLOPs an image; ``what`` says
    on which images."""

    passes: int
    images: int
    steps: int
    flops_per_image: float
    what: str

    @property
    def flops(self) -> float:
        return self.passes * self.images * self.flops_per_image

    @classmethod
    def of_run(cls, passes: int, images: int, batch_size: int, flops_per_image: float, what: str) -> Pretraining:
        """A pretraining of ``passes`` over ``images`` images in batches of ``batch_size``, the last
        partial batch of each pass dropped."""
        return cls(passes, images, (images // batch_size) * passes, flops_per_image, what)


def matched_epochs(pre: Pretraining, epochs: int, n_train: int, flops: dict[str, float]) -> int:
    """The supervised epochs over ``n_train`` samples whose FLOPs come nearest the MAE arm's pretraining
    (``pre``) and ``epochs`` of fine-tuning together, never fewer than ``epochs`` (``flops``: FLOPs per
    sample, its "supervised" entry that of a supervised step)."""
    per_epoch = n_train * flops["supervised"]
    return max(epochs, round((pre.flops + epochs * per_epoch) / per_epoch))


def arm_budget(arms: dict[str, Arm], pre: Pretraining, flops: dict[str, float], n_train: int, batch_size: int):
    """:func:`maelib.train.budget` with the MAE arm's (the first arm's) pretraining counted as ``pre`` says:
    its passes over its own images, its steps and its FLOPs."""
    frame = budget(arms, n_train // batch_size, {}, flops, (n_train // batch_size) * batch_size)
    first = next(iter(arms))
    frame.loc[first, "pretraining passes"] = pre.passes
    frame.loc[first, "optimizer steps"] += pre.steps
    frame.loc[first, "training FLOPs"] += pre.flops
    frame["FLOPs / MAE arm's"] = frame["training FLOPs"] / frame.loc[first, "training FLOPs"]
    return frame
