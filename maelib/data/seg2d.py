"""2D semantic segmentation data: CamVid (11 classes + void) and ADE20K (150 classes).

Both come back as square uint8 images (N, 3, S, S) and int64 label maps (N, S, S) with ``IGNORE`` for
void / "other" pixels. Images are resized bilinearly and labels by nearest neighbour.

- CamVid: the staged ``camvid_half.tar.gz`` (240x180 frames, splits 367/101/233) or the SegNet layout
  ``camvid/{train,trainannot,val,valannot,test,testannot}``. Class 11 (void) -> IGNORE.
- ADE20K: ``ADEChallengeData2016/{images,annotations}/{training,validation}`` or the flat
  ``{images,annotations}`` of the 3-pair sample. Label 0 ("other") -> IGNORE, k -> k - 1.
"""

from __future__ import annotations

import io
import tarfile
import zlib
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from ..files import atomic_path, file_lock
from .registry import DataCorruptError, DataMissingError, cache_dir, locate, provenance, search_paths, source_key

IGNORE = 255
CAMVID_CLASSES = ["sky", "building", "pole", "road", "pavement", "tree", "sign/symbol", "fence", "car",
                  "pedestrian", "bicyclist"]


def _resize(images: list[np.ndarray], labels: list[np.ndarray], size: int):
    x = torch.stack([F.interpolate(torch.from_numpy(np.array(i)).permute(2, 0, 1)[None].float(), size=(size, size),
                                   mode="bilinear", antialias=True, align_corners=False)[0] for i in images])
    y = torch.stack([F.interpolate(torch.from_numpy(np.array(lab))[None, None].float(), size=(size, size), mode="nearest")[0, 0]
                     for lab in labels])
    return x.round().clamp(0, 255).to(torch.uint8), y.to(torch.int64)


def _read_tar(path: Path) -> dict[str, bytes]:
    """Every file of a gzipped tar by its name inside; a damaged archive is named, with what to do."""
    try:
        with tarfile.open(path, "r:gz") as tar:
            return {m.name: tar.extractfile(m).read() for m in tar if m.isfile()}
    except (EOFError, tarfile.TarError, zlib.error, OSError) as e:
        raise DataCorruptError(f"{path} is damaged ({type(e).__name__}: {e}); copy {path.name} into {path.parent} "
                               "again from the staged data, or put SegNet's CamVid folders in "
                               f"{path.parent / 'camvid'} (python -m maelib data list)") from None


def _camvid_pairs(folder: Path, split: str):
    """Yield (image array, label array) for one CamVid split from the staged tar or a SegNet folder."""
    tar_path = folder / "camvid_half.tar.gz"
    if tar_path.exists():
        files = _read_tar(tar_path)
        root = "camvid_half"
        names = files[f"{root}/{split}.txt"].decode().split()
        for n in names:
            img = np.asarray(Image.open(io.BytesIO(files[f"{root}/{split}/{n}.jpg"])).convert("RGB"))
            lab = np.asarray(Image.open(io.BytesIO(files[f"{root}/{split}annot/{n}.png"])))
            yield img, lab
    else:
        base = folder / "camvid"
        for f in sorted((base / split).glob("*.png")):
            yield np.asarray(Image.open(f).convert("RGB")), np.asarray(Image.open(base / f"{split}annot" / f.name))


def _decode_camvid(folder: Path, size: int) -> dict:
    """Every split of CamVid resized to ``size``: ``dict(classes=[...], train=(x, y), val=..., test=...)``."""
    out = {"classes": CAMVID_CLASSES}
    for split in ("train", "val", "test"):
        imgs, labs = zip(*_camvid_pairs(folder, split))
        x, y = _resize(list(imgs), list(labs), size)
        y[y >= len(CAMVID_CLASSES)] = IGNORE
        out[split] = (x, y)
    return out


def load_camvid(size: int = 128, data_dir=None, limit: int | None = None) -> dict:
    """CamVid's three splits, resized; decoded once per size and source and cached.

    Args:
        size: the side every image and label map is resized to.
        data_dir: the root holding the dataset's folder (the only one looked in); None: MAELIB_DATA, then the cache.
        limit: keep the first that many pairs of each split; None keeps all.

    Returns:
        ``dict(train=(x, y), val=(x, y), test=(x, y), classes=[...], source=provenance)``, x (N, 3, size, size)
        uint8 and y (N, size, size) int64 with void as ``IGNORE``.
    """
    folder = locate("camvid", ("camvid_half.tar.gz", "camvid"), data_dir)
    src = folder / "camvid_half.tar.gz" if (folder / "camvid_half.tar.gz").exists() else folder / "camvid"
    cache = cache_dir() / f"camvid_{source_key(src)}_{size}.pt"
    with file_lock(cache):  # decoded once, even by runs that start together
        if cache.exists():
            out = torch.load(cache, weights_only=True)
        else:
            out = _decode_camvid(folder, size)
            with atomic_path(cache) as tmp:
                torch.save(out, tmp)
    if limit:
        out = {k: (v[0][:limit], v[1][:limit]) if isinstance(v, tuple) else v for k, v in out.items()}
    return {**out, "source": provenance("camvid", src)}


def ade20k_classes(folder: Path) -> list[str]:
    info = folder / "objectInfo150.csv"
    if not info.exists():
        return [f"class {i}" for i in range(150)]
    lines = info.read_text().splitlines()[1:]
    return [line.rsplit(",", 1)[-1].split(";")[0].strip('"') for line in lines]


def load_ade20k(size: int = 256, data_dir=None, limit: int | None = None, train_optional: bool = False) -> dict:
    """ADE20K as ``dict(train=(x, y), val=(x, y), classes=[150 names])``, resized like :func:`load_camvid`'s.

    Args:
        size: the side every image and label map is resized to.
        data_dir: the root holding the dataset's folder (the only one looked in); None: MAELIB_DATA, then the cache.
        limit: keep the first that many pairs of each split; None keeps all.
        train_optional: without the full set, read the 3-pair validation sample instead (val only, for
            loader tests); otherwise its absence is a :class:`DataMissingError`.
    """
    try:
        folder = locate("ade20k", ("ADEChallengeData2016",), data_dir) / "ADEChallengeData2016"
        splits = {"train": "training", "val": "validation"}
    except DataMissingError as e:
        if not train_optional:
            sample = [p for p in search_paths("ade20k_sample", data_dir) if (p / "images").exists()]
            held = (f" ({sample[0]} holds only the 3-pair validation sample, which cannot train a model)"
                    if sample else "")
            raise DataMissingError(f"ADE20K's training images are missing{held}.\n{e}") from None
        folder = locate("ade20k_sample", ("images",), data_dir)
        splits = {"val": ""}
    out = {"classes": ade20k_classes(folder if (folder / "objectInfo150.csv").exists() else folder.parent)}
    for split, sub in splits.items():
        files = sorted((folder / "images" / sub).glob("*.jpg"))[:limit]
        imgs = [np.asarray(Image.open(f).convert("RGB")) for f in files]
        labs = [np.asarray(Image.open(folder / "annotations" / sub / f.with_suffix(".png").name)) for f in files]
        x, y = _resize(imgs, labs, size)
        y = torch.where(y == 0, torch.full_like(y, IGNORE), y - 1)
        out[split] = (x, y)
    return out
