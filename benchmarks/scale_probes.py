"""Probes that size the credible-scale recipes (#34) before a sweep is spent on them: one seed, no record.

Each probe trains one piece of a chapter at its quick profile with a few parameters changed, prints what it
measured and appends it as one JSON line to ``--out``. Nothing here is a result of the book. The image
probes score on held-out training data (the last tenth of each class's training images,
:func:`maelib.images.holdout`), so they may inform a setting; the volume probe scores on the chapter's
validation cases, so it sizes cost and schedule lengths only (pretraining long enough for the MAE criterion,
fine-tuning long enough for every arm to finish: the quick volumes profile's were sized so) and never a rate
or anything that favours one arm.

    # Does the image MAE learn (held-out loss / the flat predictor's <= maelib.mae.LEARNED)?
    python benchmarks/scale_probes.py image-mae --decoder 64 1 --norm-target 0 --epochs 14 --save mae.pt
    # Does an arm finish within EPOCHS (gain over the last fifth, maelib.stats.last_fifth_gain)?
    python benchmarks/scale_probes.py image-finetune --epochs 40 --lr 2e-3
    python benchmarks/scale_probes.py image-finetune --epochs 40 --lr 4e-3 --mae mae.pt --decoder 64 1 --norm-target 0
    # Hippocampus resampled to a finer spacing, so that a crop holds more of UNETR's 16^3 patches
    python benchmarks/scale_probes.py volume --spacing 0.5 --roi 64 64 48 --epochs 16 --lr 8e-3 --mae

Two probes can run side by side with ``--threads 1`` each (whether that beats one on two threads depends on
the host: ``benchmarks/parallel_throughput.py`` measures it).
"""

from __future__ import annotations

import argparse
import json
import math
import time

import torch

from maelib import images, profiles, stats, train, volumes
from maelib.data import volumes as vdata
from maelib.heads import encoder_like


def image_params(args, **more):
    """The quick image profile with the probe's decoder and target (seed 0)."""
    dim, depth = args.decoder
    return profiles.resolve("images", "quick", seed=0, decoder_dim=dim, decoder_depth=depth,
                            norm_target=bool(args.norm_target), **more)


def image_mae(args) -> dict:
    """Pretrain the quick image MAE for ``--epochs`` on the labelled and unlabelled training images."""
    p = image_params(args, pretrain_epochs=args.epochs)
    data = images.load_data(p)
    train.seed_everything(0)
    mae = images.make_mae(p)
    history = images.pretrain(mae, data, p, train.pick_device("cpu"))
    if args.save:
        torch.save(mae.state_dict(), args.save)
    return {"val_loss": history["val_loss"].round(4).tolist(), "ratio": images.versus_flat(mae, data, p)}


def image_finetune(args) -> dict:
    """One arm fine-tuned for ``--epochs`` on nine tenths of the training images, scored on the last tenth:
    from the MAE saved by ``image-mae --save`` (with layer-wise decay), or from scratch without ``--mae``."""
    p = image_params(args, unlabelled=0)
    data = images.holdout(images.load_data(p))
    train.seed_everything(0)
    mae = images.make_mae(p)
    if args.mae:
        mae.load_state_dict(torch.load(args.mae))
    encoder = encoder_like(mae, p.drop_path, pretrained=bool(args.mae), learn_positions=True)
    torch.manual_seed(0)
    _, history = images.finetune(encoder, data, p, train.pick_device("cpu"), "probe", None, args.lr,
                                 p.layer_decay if args.mae else 1.0, epochs=args.epochs)
    curve = (100 * history["val_acc"]).round(2).tolist()
    return {"curve": curve, "final": curve[-1], "gain": stats.last_fifth_gain(curve)}


def volume(args) -> dict:
    """UNETR on the hippocampus at ``--spacing`` mm in ``--roi`` crops for ``--epochs``, from scratch or
    (``--mae``) from the quick MAE pretrained at that scale (``--pretrain-epochs``); Dice on the validation
    cases every epoch. With ``--epochs 0`` only the MAE's held-out loss over the flat predictor's."""
    roi = tuple(args.roi)
    more = {"pretrain_epochs": args.pretrain_epochs} if args.pretrain_epochs else {}
    p = profiles.resolve("volumes", "quick", seed=0, roi=list(roi), spacing=args.spacing, **more)
    dev = train.pick_device("cpu")
    train.seed_everything(0)
    files = vdata.split(vdata.hippocampus_files(p.data_dir), 0.2, 0, p.limit)
    tr, va = volumes.datasets("hippocampus", files, roi, p.spacing)
    out = {"tokens": math.prod(r // volumes.PATCH for r in roi), "largest_case": tr.shapes.max(0).values.tolist()}
    n_out = len(vdata.HIPPOCAMPUS_LABELS) + 1
    model = volumes.make_unetr(p, roi, n_out)
    if args.mae:
        start = time.time()
        mae = volumes.make_mae(p, roi)
        volumes.pretrain(mae, tr, p, dev, 0)
        out.update(ratio=volumes.versus_flat(mae, va, roi, p, dev), pretrain_min=(time.time() - start) / 60)
        volumes.transfer(mae, model)
    if not args.epochs:
        return out
    torch.manual_seed(0)
    history = volumes.train_unetr(model, tr, va, roi, n_out, p, dev, 0, "probe", None, args.lr, args.epochs)
    curve = history["dice"].round(4).tolist()
    return {**out, "curve": curve, "final": curve[-1], "gain": stats.last_fifth_gain(curve)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="probe", required=True)
    for name in ("image-mae", "image-finetune"):
        s = sub.add_parser(name)
        s.add_argument("--decoder", nargs=2, type=int, default=[64, 1], metavar=("DIM", "DEPTH"))
        s.add_argument("--norm-target", type=int, choices=(0, 1), default=1)
        s.add_argument("--epochs", type=int, required=True)
    sub.choices["image-mae"].add_argument("--save", help="where to write the pretrained MAE's weights")
    sub.choices["image-finetune"].add_argument("--lr", type=float, required=True, help="base rate (per 256)")
    sub.choices["image-finetune"].add_argument("--mae", help="weights from image-mae --save; none: scratch")
    v = sub.add_parser("volume")
    v.add_argument("--spacing", type=float, required=True, help="mm, every axis (the data are at 1 mm)")
    v.add_argument("--roi", nargs=3, type=int, required=True, help="the crop, three multiples of 16")
    v.add_argument("--epochs", type=int, required=True, help="UNETR's; 0: pretrain (--mae) only")
    v.add_argument("--lr", type=float, default=8e-3)
    v.add_argument("--pretrain-epochs", type=int, help="the MAE's (default: the quick profile's)")
    v.add_argument("--mae", action="store_true", help="pretrain the MAE at this scale and start from it")
    for s in sub.choices.values():
        s.add_argument("--threads", type=int, default=1)
        s.add_argument("--out", default="scale_probes.jsonl")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    start = time.time()
    row = {**{k: v for k, v in vars(args).items() if k not in ("out",)},
           **{"image-mae": image_mae, "image-finetune": image_finetune, "volume": volume}[args.probe](args)}
    row["minutes"] = round((time.time() - start) / 60, 1)
    print(json.dumps(row), flush=True)
    with open(args.out, "a") as f:
        f.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
