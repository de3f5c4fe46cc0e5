"""Chapter 1 recipes: pretrain an image MAE, fine-tune its encoder, probe it, and the scratch baseline.

Every function takes the resolved chapter parameters ``p`` (see :mod:`maelib.profiles`) so that the
notebook reads as the study's narrative and the machinery lives here.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from .data import TensorLoader, channel_stats, normalize, random_resized_crop_flip
from .data import tinyimagenet
from .heads import LinearProbe, ViTClassifier, cls_features, encoder_like
from .budgets import Pretraining
from .mae import MaskedAutoencoder
from .metrics import accuracy
from .masking import check_split, visible_count
from .tokens import Patches2d
from .files import save_torch_atomic
from .train import (GRID_EXTENSIONS, Arm, TrainConfig, checkpoint_file, fit, grid_search,
                    param_groups, step_flops)

MEAN, STD = tinyimagenet.MEAN, tinyimagenet.STD


def synthetic_images(n: int, n_classes: int, size: int = 64, seed: int = 0):
    """An offline stand-in: oriented colour gratings whose angle and colour encode the class, plus noise.

    Returns x (n, 3, size, size) uint8 and y (n,) int64. Only used when a chapter asks for it.
    """
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % n_classes
    angle = y.float() / n_classes * np.pi + 0.2 * torch.randn(n, generator=g)
    freq = 2 + (y % 3).float()
    yy, xx = torch.meshgrid(torch.linspace(-1, 1, size), torch.linspace(-1, 1, size), indexing="ij")
    phase = torch.rand(n, generator=g) * 2 * np.pi
    wave = torch.sin(freq[:, None, None] * np.pi * (xx * torch.cos(angle)[:, None, None] + yy * torch.sin(angle)[:, None, None]) + phase[:, None, None])
    colour = torch.stack([(y * 37 % 255), (y * 91 % 255), (y * 151 % 255)], 1).float() / 255
    img = 0.5 + 0.35 * wave[:, None] * colour[:, :, None, None] + 0.1 * torch.randn(n, 3, size, size, generator=g)
    return (img.clamp(0, 1) * 255).to(torch.uint8), y


def load_data(p) -> dict:
    """Train/val uint8 images resized to ``p.img_size``, labels and class names (real data unless
    ``p.synthetic``), and under ``unlabelled`` up to ``p.unlabelled`` images of the other 180 classes, which
    only MAE pretraining sees (:func:`maelib.data.tinyimagenet.load_unlabelled`; none with synthetic data)."""
    if p.synthetic:
        n_train = p.limit or 50 * p.n_classes
        xtr, ytr = synthetic_images(n_train, p.n_classes, 64, p.seed)
        xva, yva = synthetic_images(max(n_train // 5, p.n_classes), p.n_classes, 64, p.seed + 1)
        data = {"train": (xtr, ytr), "val": (xva, yva), "names": [f"grating {i}" for i in range(p.n_classes)]}
    else:
        data = tinyimagenet.load(p.n_classes, p.data_dir, limit=p.limit)
    for split in ("train", "val"):
        x, y = data[split]
        data[split] = (resize(x, p.img_size), y)
    data["unlabelled"] = torch.zeros(0, 3, p.img_size, p.img_size, dtype=torch.uint8)
    if p.unlabelled and not p.synthetic:
        x, data["unlabelled_source"] = tinyimagenet.load_unlabelled(p.unlabelled, p.data_dir)
        data["unlabelled"] = resize(x, p.img_size)
    return data


def resize(x: torch.Tensor, size: int) -> torch.Tensor:
    """uint8 images (N, 3, H, W) -> (N, 3, size, size), bilinear with antialiasing; unchanged at that size."""
    if x.shape[-2:] == (size, size):
        return x
    x = F.interpolate(x.float(), size=(size, size), mode="bilinear", antialias=True, align_corners=False)
    return x.round().clamp(0, 255).to(torch.uint8)


def make_mae(p) -> MaskedAutoencoder:
    """The image MAE of the chapter's parameters ``p`` (their size: :data:`maelib.profiles.MAE_SIZES`)."""
    return MaskedAutoencoder(Patches2d(p.img_size, p.patch_size), dim=p.dim, depth=p.depth, heads=p.heads,
                             decoder_dim=p.decoder_dim, decoder_depth=p.decoder_depth, norm_target=p.norm_target)


def check_model(p, device=None) -> None:
    """The MAE of ``p`` built and run once on two blank images (before any data is loaded); its mask must
    hide a token and show one."""
    mae = make_mae(p)
    length = mae.tokenizer.num_tokens
    source = f"img_size {p.img_size} in patch_size {p.patch_size} patches"
    check_split(length, visible_count(length, p.mask_ratio), p.mask_ratio, source)
    with torch.no_grad():
        mae(torch.zeros(2, 3, p.img_size, p.img_size), p.mask_ratio)


def preflight(p, device=None) -> None:
    """Refuse a setting that cannot work before any data is loaded: :func:`check_model`, and the training
    images must fill one batch."""
    check_model(p)
    if p.limit is not None:
        tuned = p.finetune_lr is None or p.scratch_lr is None  # a held-out tenth chooses a learning rate
        labels = torch.arange(p.limit) % p.n_classes
        n = len(holdout({"train": (labels, labels), "names": []})["train"][1]) if tuned else p.limit
        if n < p.batch_size:
            raise ValueError(f"limit {p.limit} leaves {n} training images{' beside the held-out tenth' * tuned}, "
                             f"fewer than one batch (batch_size {p.batch_size}); an incomplete batch is dropped, "
                             "so nothing would train: raise limit or lower batch_size")


def save_mae(mae: MaskedAutoencoder, p, path: str | Path, dtype: torch.dtype = torch.float32) -> Path:
    """The trained MAE with what rebuilds it (config, image and patch size, mask ratio), written
    atomically; ``dtype=torch.float16`` halves the file (the compact copy a book ships)."""
    state = {k: v.to(dtype) if v.is_floating_point() else v for k, v in mae.state_dict().items()}
    save_torch_atomic({"config": mae.config, "img_size": mae.tokenizer.img_size,
                       "patch_size": mae.tokenizer.patch_size, "mask_ratio": float(p.mask_ratio), "profile": p.profile,
                       "state_dict": state}, path)
    return Path(path)


def load_mae(path: str | Path) -> tuple[MaskedAutoencoder, dict]:
    """The MAE saved by :func:`save_mae`, in float32 and eval mode on the CPU, and the saved facts
    (img_size, patch_size, mask_ratio, profile). Only tensors and plain data are read (``weights_only``):
    a file that holds anything else is refused, so a downloaded checkpoint cannot run code."""
    import inspect
    import pickle

    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, KeyError, ValueError, IndexError) as e:  # text: KeyError
        why = (str(e).splitlines() or [""])[0][:160]
        raise ValueError(f"{path} is not a readable image-MAE checkpoint ({type(e).__name__}: {why})") from None
    if not isinstance(state, dict) or not {"config", "img_size", "patch_size", "state_dict"} <= set(state):
        raise ValueError(f"{path} is not an image-MAE checkpoint written by maelib (config, img_size, patch_size, "
                         "state_dict)")
    config, names = state["config"], set(inspect.signature(MaskedAutoencoder).parameters) - {"tokenizer"}
    if not isinstance(config, dict) or set(config) != names:
        raise ValueError(f"{path} is not an image-MAE checkpoint written by maelib (its config must name "
                         f"{', '.join(sorted(names))})")
    mae = MaskedAutoencoder(Patches2d(state["img_size"], state["patch_size"]), **config)
    mae.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in state["state_dict"].items()})
    return mae.eval(), {k: v for k, v in state.items() if k not in ("config", "state_dict")}


def load_pretrained(mae: MaskedAutoencoder, path: str | Path) -> list[str]:
    """Copy the encoder of an image-MAE checkpoint of the same encoder widths into ``mae``'s, except the
    fixed positions (remade for ``mae``'s image size): what transfers is the encoder, and the checkpoint's
    decoder may have other widths. Returns the names of ``mae.encoder``'s tensors not found; a checkpoint
    whose encoder has other widths is a ValueError that names ``mae_checkpoint``."""
    other, _ = load_mae(path)
    state = {k: v for k, v in other.encoder.state_dict().items() if "pos" not in k}
    try:
        return mae.encoder.load_state_dict(state, strict=False).missing_keys
    except RuntimeError as e:
        why = next((line.strip() for line in str(e).splitlines() if "size mismatch" in line), str(e).splitlines()[0])
        raise ValueError(f"mae_checkpoint {path}: its encoder has other widths than this run's ({why})") from None


def _augment(scale):
    def transform(batch, g):
        x, *rest = batch
        x = random_resized_crop_flip(normalize(x, MEAN, STD), g, scale=scale)
        return (x, *rest)
    return transform


def _eval_transform(batch, g=None):
    x, *rest = batch
    return (normalize(x, MEAN, STD), *rest)


def pretrain(mae: MaskedAutoencoder, data: dict, p, device, ckpt_dir: Path | None = None):
    """MAE pretraining on the training images and the unlabelled ones (crop + flip); returns the per-epoch
    history.

    The history also tracks the hidden-patch loss on a fixed validation batch with a fixed mask.
    """
    x = torch.cat([data["train"][0], data.get("unlabelled", data["train"][0][:0])])
    loader = TensorLoader((x,), p.batch_size, shuffle=True, seed=p.seed, drop_last=True, device=device,
                          transform=_augment((0.2, 1.0)))
    xv = normalize(data["val"][0][:256].to(device), MEAN, STD)
    gv = torch.Generator(device=xv.device).manual_seed(12345)

    def evaluate(model):
        gv.manual_seed(12345)
        return {"val_loss": model(xv, p.mask_ratio, generator=gv)[0].item()}

    cfg = TrainConfig(epochs=p.pretrain_epochs, lr=p.pretrain_lr * p.batch_size / 256, weight_decay=0.05,
                      warmup_epochs=min(max(1, p.pretrain_epochs // 10), 40), betas=(0.9, 0.95), seed=p.seed,
                      checkpoint=checkpoint_file(ckpt_dir, "pretrain"), desc="MAE pretraining",
                      extra={"mask_ratio": p.mask_ratio, **mae.config}, precision=p.precision)
    return fit(mae, pretrain_step(p.mask_ratio), loader, cfg, device, groups=param_groups(mae, cfg.weight_decay),
               evaluate=evaluate)


def pretrain_step(mask_ratio: float):
    """The MAE pretraining step's loss: ``step(mae, (x,))``, x (B, 3, H, W), hides ``mask_ratio`` of each
    image's patches and returns the hidden-patch loss."""
    return lambda model, batch: model(batch[0], mask_ratio)[0]


def versus_flat(mae: MaskedAutoencoder, data: dict, p, n: int = 256) -> float:
    """The pretrained MAE's held-out loss over the flat predictor's (:func:`maelib.mae.versus_flat`) on the
    first ``n`` validation images, one fixed mask: at most :data:`maelib.mae.LEARNED` when it learned."""
    from .mae import versus_flat as ratio

    x = normalize(data["val"][0][:n].to(next(mae.parameters()).device), MEAN, STD)
    return ratio(mae, x, p.mask_ratio)["ratio"]


@torch.no_grad()
def hits(model, data: dict, device, batch_size: int = 512) -> list[int]:
    """1 where ``model`` classifies a validation image right, else 0: one per image, in order (the items of
    the interval, :func:`maelib.stats.paired_items`)."""
    model.eval()
    xv, yv = data["val"]
    pred = torch.cat([model(_eval_transform((xv[i:i + batch_size].to(device),))[0]).argmax(-1).cpu()
                      for i in range(0, len(xv), batch_size)])
    return (pred == yv).int().tolist()


def finetune_step(model, batch) -> torch.Tensor:
    """The supervised step's loss: cross-entropy with label smoothing 0.1 on ``batch`` = (x (B, 3, H, W), y (B,))."""
    return F.cross_entropy(model(batch[0]), batch[1], label_smoothing=0.1)


def flops_per_sample(p, n: int = 2) -> dict[str, float]:
    """Forward and backward FLOPs per image of a "pretraining" step (the MAE at ``p.mask_ratio``) and of a
    "supervised" one (the classifier every arm fine-tunes), counted on ``n`` random images
    (:func:`~maelib.train.step_flops`); torch's random state is left as it was."""
    with torch.random.fork_rng():
        x, y = torch.randn(n, 3, p.img_size, p.img_size), torch.zeros(n, dtype=torch.long)
        mae = make_mae(p)
        clf = ViTClassifier(encoder_like(mae, p.drop_path, learn_positions=True), p.n_classes)
        return {"pretraining": step_flops(mae, pretrain_step(p.mask_ratio), (x,)) / n,
                "supervised": step_flops(clf, finetune_step, (x, y)) / n}


def _classification_eval(data, device, batch_size: int = 512):
    xv, yv = data["val"]

    def evaluate(model):
        logits = torch.cat([model(_eval_transform((xv[i:i + batch_size].to(device),))[0]).float()
                            for i in range(0, len(xv), batch_size)])
        return {"val_loss": F.cross_entropy(logits, yv.to(device)).item(), "val_acc": accuracy(logits, yv.to(device))}
    return evaluate


def finetune(encoder, data: dict, p, device, desc: str, ckpt_dir: Path | None = None, lr: float | None = None,
             layer_decay: float = 1.0, progress: bool = True, epochs: int | None = None):
    """Supervised training of ``ViTClassifier(encoder)`` for ``epochs`` (default ``p.finetune_epochs``):
    AdamW at the base learning rate ``lr`` (scaled by batch_size / 256), warmup + cosine, layer-wise lr
    decay ``layer_decay`` (1: none, as for a ViT trained from scratch), label smoothing 0.1, crop + flip.
    Returns (model, history with val_acc per epoch, on ``data["val"]``)."""
    epochs = epochs or p.finetune_epochs
    model = ViTClassifier(encoder, len(data["names"]))
    loader = TensorLoader(data["train"], p.batch_size, shuffle=True, seed=p.seed, drop_last=True, device=device,
                          transform=_augment((0.35, 1.0)))
    cfg = TrainConfig(epochs=epochs, lr=lr * p.batch_size / 256, weight_decay=0.05,
                      warmup_epochs=min(5, max(1, epochs // 8)), betas=(0.9, 0.999), seed=p.seed,
                      checkpoint=checkpoint_file(ckpt_dir, desc), desc=desc,
                      extra={"layer_decay": layer_decay, "drop_path": p.drop_path}, precision=p.precision)
    groups = param_groups(model, cfg.weight_decay, model.layer_of, encoder.depth + 1, layer_decay)
    history = fit(model, finetune_step, loader, cfg, device, groups=groups, evaluate=_classification_eval(data, device),
                  progress=progress)
    return model, history


MATCHED = "scratch, budget-matched"  # the scratch arm given the MAE arm's pretraining and fine-tuning FLOPs


def pretraining(p, data: dict, flops: dict[str, float]) -> Pretraining:
    """The MAE arm's pretraining (:func:`pretrain`): ``p.pretrain_epochs`` passes over the training images
    and the unlabelled ones, at ``flops["pretraining"]`` an image (:func:`flops_per_sample`)."""
    n_train, n_more = len(data["train"][0]), len(data.get("unlabelled", ()))
    what = f"{n_train:,} training images" + (f" and {n_more:,} unlabelled ones" if n_more else "")
    return Pretraining.of_run(p.pretrain_epochs, n_train + n_more, p.batch_size, flops["pretraining"], what)


def arms(mae: MaskedAutoencoder, p, matched: int) -> dict[str, Arm]:
    """The three supervised arms (:class:`~maelib.train.Arm`; ``build()`` makes the arm's fresh encoder, its
    positions learned, as the original MAE fine-tunes them). The MAE arm starts from the pretrained
    encoder with layer-wise decay; scratch starts at random without it (a recipe for pretrained encoders),
    for as many epochs as the MAE arm's fine-tuning, and once more for ``matched`` epochs, those whose FLOPs
    match the MAE arm's pretraining and fine-tuning together (:data:`MATCHED`;
    :func:`maelib.budgets.matched_epochs`), so that "MAE beats scratch" cannot mean "more compute beats less"."""
    def scratch():
        return encoder_like(mae, p.drop_path, pretrained=False, learn_positions=True)

    return {"MAE + fine-tune": Arm(lambda: encoder_like(mae, p.drop_path, learn_positions=True), p.layer_decay,
                                   p.finetune_lr, p.finetune_epochs),
            "scratch": Arm(scratch, 1.0, p.scratch_lr, p.finetune_epochs),
            MATCHED: Arm(scratch, 1.0, p.matched_lr, matched)}


def holdout(data: dict, fraction: float = 0.1) -> dict:
    """The training images split for choosing hyperparameters: the last ``fraction`` of each class's
    training images become ``val`` (the reported validation split is not used), the rest ``train``."""
    x, y = data["train"]
    rank = torch.zeros(len(y), dtype=torch.long)
    for c in y.unique():
        idx = (y == c).nonzero().flatten()
        rank[idx] = torch.arange(len(idx))
    counts = torch.bincount(y)[y]
    held = rank >= counts - (counts.float() * fraction).ceil().long()
    return {"train": (x[~held], y[~held]), "val": (x[held], y[held]), "names": data["names"]}


def choose_lr(build, data: dict, p, device, arm: str, ckpt_dir: Path | None, layer_decay: float,
              fixed: float | None = None, epochs: int | None = None) -> tuple[float, dict]:
    """The base fine-tuning learning rate of one arm: ``fixed`` when given, else the value of ``p.lr_grid``
    (grown past an end where the best lies, :func:`~maelib.train.grid_search`) whose model (``build()``,
    the arm's fresh encoder) ends with the best top-1 on a held-out tenth of the training images
    (:func:`holdout`). Returns (lr, {lr: held-out top-1 %}) ({} when fixed)."""
    if fixed is not None:
        return fixed, {}
    held = holdout(data)

    def score(lr):
        torch.manual_seed(p.seed)
        _, history = finetune(build(), held, p, device, f"tune {arm} lr={lr:g}", ckpt_dir, lr, layer_decay,
                              progress=False, epochs=epochs)
        return 100 * float(history["val_acc"].iloc[-1])

    return grid_search(p.lr_grid, score, extend=GRID_EXTENSIONS)


def linear_probe(encoder, data: dict, p, device):
    """The original MAE's linear probe on frozen ``[cls]`` features (computed once, no augmentation):
    BatchNorm without affine + linear, AdamW. Returns (probe, history with val_acc per epoch)."""
    encoder = encoder.to(device)
    feats = {s: cls_features(encoder, data[s][0], transform=lambda x: normalize(x, MEAN, STD))
             for s in ("train", "val")}
    probe = LinearProbe(encoder.dim, len(data["names"]))
    loader = TensorLoader((feats["train"], data["train"][1]), 256, shuffle=True, seed=p.seed, device=device)
    fv, yv = feats["val"].to(device), data["val"][1].to(device)
    cfg = TrainConfig(epochs=p.probe_epochs, lr=1e-3, weight_decay=0.0, warmup_epochs=1, seed=p.seed,
                      desc="linear probe", precision=p.precision)
    step = lambda m, b: F.cross_entropy(m(b[0]), b[1])  # noqa: E731
    history = fit(probe, step, loader, cfg, device, evaluate=lambda m: {"val_acc": accuracy(m(fv), yv)})
    return probe, history


@torch.no_grad()
def reconstructions(mae: MaskedAutoencoder, x: torch.Tensor, mask_ratio: float, seed: int = 0) -> dict:
    """Original / masked / reconstruction / pasted images in [0, 1], each (N, H, W, 3) numpy, and the
    per-image loss on hidden patches."""
    mae.eval()
    dev = next(mae.parameters()).device
    xn = normalize(resize(x, mae.tokenizer.img_size).to(dev), MEAN, STD)
    g = torch.Generator(device=dev).manual_seed(seed)
    tokens = mae.tokenizer.tokenize(xn)
    from .masking import random_masking

    m = random_masking(len(xn), tokens.shape[1], mask_ratio, dev, g)
    pred = mae.forward_decoder(mae.forward_encoder(tokens, m), m)
    per_image = (((pred - mae.target(tokens)) ** 2).mean(-1) * m.mask).sum(1) / m.mask.sum(1)
    recon, pasted = mae.reconstruct(xn, pred, m.mask)
    masked = mae.tokenizer.untokenize(tokens * (1 - m.mask.unsqueeze(-1)))
    show = lambda t: denormalize(t).permute(0, 2, 3, 1).cpu().numpy()  # noqa: E731
    return {"original": show(xn), "masked": show(masked) * show_mask(mae, m.mask), "reconstruction": show(recon),
            "pasted": show(pasted), "loss": per_image.cpu().numpy()}


def show_mask(mae: MaskedAutoencoder, mask: torch.Tensor) -> np.ndarray:
    """(N, L) mask -> (N, H, W, 1) visibility in image space (hidden patches go black)."""
    vis = (1 - mask).unsqueeze(-1).expand(-1, -1, mae.tokenizer.token_dim)
    return mae.tokenizer.untokenize(vis).permute(0, 2, 3, 1)[..., :1].cpu().numpy()


def denormalize(x: torch.Tensor) -> torch.Tensor:
    m, s = channel_stats(MEAN, STD, x.device)
    return (x.float() * s + m).clamp(0, 1)
