"""TinyImageNet (64x64, 200 classes) as uint8 tensors, with a class subset.

Two layouts are read: the canonical ``tiny-imagenet-200/`` folder (the unzipped download), and the
staged archive of ``$MAELIB_DATA/tinyimagenet`` (``tin_subset20.tar.gz``: 20 classes with their 500
training and 50 validation images each). Classes are chosen as ``sorted(wnids)[::len // n_classes]
[:n_classes]`` from the 200 classes of the canonical folder, or from the 20 staged ones, so 20 classes
are exactly the staged subset.
About 1.5% of the JPEGs are greyscale; every image is converted to RGB.
"""

from __future__ import annotations

import io
import tarfile
import zlib
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from ..files import atomic_path, file_lock
from .registry import DataCorruptError, cache_dir, locate, provenance
from .registry import sha256 as registry_sha256
from .registry import source_key as registry_source_key

MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)


SIZE = 64  # every TinyImageNet image is 64 x 64


def _decode(data: bytes, name: str = "an image", where: str | Path = "") -> np.ndarray:
    """One JPEG -> (64, 64, 3) uint8; an empty, broken or wrongly sized one is a DataCorruptError naming the
    member ``name`` of ``where``."""
    try:
        image = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"), dtype=np.uint8)
    except OSError as e:  # PIL: empty, truncated or not an image ("cannot identify image file <BytesIO>")
        why = "it is empty" if not data else f"it cannot be decoded ({type(e).__name__})"
        raise DataCorruptError(f"{name} in {where}: {why}; restage the dataset") from None
    if image.shape != (SIZE, SIZE, 3):
        raise DataCorruptError(f"{name} in {where}: it is {image.shape[1]} x {image.shape[0]} pixels, not the "
                               f"{SIZE} x {SIZE} of TinyImageNet; restage the dataset")
    return image


def pick_classes(wnids: list[str], n_classes: int) -> list[str]:
    if not 1 <= n_classes <= len(wnids):
        raise ValueError(f"n_classes must be in [1, {len(wnids)}], got {n_classes}")
    return sorted(wnids)[:: len(wnids) // n_classes][:n_classes]


STAGED = "tin_subset20.tar.gz"


def _members_from_tars(folder: Path, split: str, name: str = STAGED):
    """Yield (path inside archive, bytes) of the staged archive ``name``'s ``split`` ("train" or "val")."""
    archive = folder / name
    try:
        with tarfile.open(archive, "r:gz") as tar:
            for m in tar:
                if m.isfile() and f"/{split}/" in m.name:
                    yield m.name, tar.extractfile(m).read()
    except (EOFError, tarfile.TarError, zlib.error, OSError) as e:
        raise DataCorruptError(
            f"{archive} is damaged ({type(e).__name__}: {e}); copy {name} into {folder} again from the staged "
            "data, or use the full download (python -m maelib data fetch tinyimagenet)") from None


def _members_from_folder(root: Path, split: str):
    files = (root / "train").glob("*/images/*.JPEG") if split == "train" else (root / "val").rglob("*")
    for f in files:
        if f.is_file():
            yield str(f.relative_to(root.parent)), f.read_bytes()


def _read(folder: Path, split: str, wanted: list[str]):
    """Decode the ``split`` images of the ``wanted`` wnids -> (N, 64, 64, 3) uint8, (N,) int64."""
    canonical = folder / "tiny-imagenet-200"
    members = dict(_members_from_folder(canonical, split) if canonical.exists() else _members_from_tars(folder, split))
    index = {w: i for i, w in enumerate(wanted)}
    pairs = []
    if split == "train":
        for path in members:
            parts = Path(path).parts
            if path.endswith(".JPEG") and len(parts) >= 3 and parts[-3] in index:
                pairs.append((path, index[parts[-3]]))
    else:
        ann = next(v for k, v in members.items() if k.endswith("val_annotations.txt"))
        by_name = {k.rsplit("/", 1)[-1]: k for k in members if k.endswith(".JPEG")}
        for line in ann.decode().splitlines():
            fname, wnid = line.split("\t")[:2]
            if wnid in index:
                pairs.append((by_name[fname], index[wnid]))
    pairs.sort()
    where = canonical if canonical.exists() else folder / STAGED
    x = (np.stack([_decode(members[p], p, where) for p, _ in pairs]) if pairs
         else np.zeros((0, SIZE, SIZE, 3), np.uint8))
    return x, np.array([y for _, y in pairs], dtype=np.int64)


def class_pool(folder: Path) -> list[str]:
    """The wnids classes are picked from: all 200 in the canonical folder, the 20 staged ones otherwise."""
    canonical = folder / "tiny-imagenet-200" / "wnids.txt"
    text = canonical.read_text() if canonical.exists() else (folder / "subset20_wnids.txt").read_text()
    return [line.split()[0] for line in text.splitlines() if line.strip()]  # the staged file adds names


def load(n_classes: int = 20, data_dir=None, limit: int | None = None):
    """Load train and val as tensors; decoded arrays are cached under the maelib cache folder.

    Args:
        n_classes: how many classes are picked (:func:`pick_classes`).
        data_dir: the root holding the dataset's folder (the only one looked in); None: MAELIB_DATA, then the cache.
        limit: keep at most that many images per split, a balanced prefix (the smoke profile).

    Returns:
        ``dict(train=(x, y), val=(x, y), classes=[wnid...], names=[str...], source=provenance)`` with
        x (N, 3, 64, 64) uint8 and y (N,) int64.
    """
    folder = locate("tinyimagenet", ("tiny-imagenet-200", "tin_subset20.tar.gz"), data_dir)
    pool = class_pool(folder)
    have = len(pool)
    if n_classes > have:
        raise ValueError(f"n_classes={n_classes} but {folder} holds training images for {have} classes only; "
                         f"use n_classes <= {have} or fetch all 200 (python -m maelib data fetch tinyimagenet)")
    wanted = pick_classes(pool, n_classes)
    canonical = (folder / "tiny-imagenet-200").exists()
    source = provenance("tinyimagenet", folder / ("tiny-imagenet-200" if canonical else STAGED))
    out = {"classes": wanted, "names": _names(folder, wanted), "source": source}
    tag = f"{'canonical' if canonical else 'staged'}_{source_key(folder, canonical)}"
    for split in ("train", "val"):
        cache = cache_dir() / f"tinyimagenet_{tag}_{n_classes}_{split}.npz"
        with file_lock(cache):  # decoded once, even by runs that start together
            if cache.exists():
                z = np.load(cache)
                x, y = z["x"], z["y"]
            else:
                x, y = _read(folder, split, wanted)
                with atomic_path(cache) as tmp:
                    with open(tmp, "wb") as f:
                        np.savez(f, x=x, y=y)
        if limit is not None:
            x, y = balanced_prefix(x, y, limit)
        out[split] = (torch.from_numpy(x).permute(0, 3, 1, 2).contiguous(), torch.from_numpy(y))
    return out


UNLABELLED = ("tin_train180.tar.gz", "7306f21a76ff09a7c62ce37bd236410b969e8f794a07ec07cc7f39269f67539c")
OTHER_CLASSES = 180  # the classes outside the staged 20: their 90,000 training images, staged apart


def load_unlabelled(n: int, data_dir=None) -> tuple[torch.Tensor, dict]:
    """Up to ``n`` training images of the 180 classes outside the staged 20, without their labels: the
    images an MAE may pretrain on and no supervised arm sees. The first ``n // 180`` (at least one) of each
    class, read from the canonical folder or the staged ``tin_train180.tar.gz`` (checked against its
    sha256); decoded once into the maelib cache.

    Returns:
        (x (M, 3, 64, 64) uint8 with M <= n, the provenance of what was read).
    """
    if n < 1:
        raise ValueError(f"n must be at least 1, got {n}")
    folder = locate("tinyimagenet", ("tiny-imagenet-200", UNLABELLED[0]), data_dir)
    canonical = (folder / "tiny-imagenet-200").exists()
    path = folder / ("tiny-imagenet-200" if canonical else UNLABELLED[0])
    source = {"dataset": "tinyimagenet", "file": path.name, "sha256": None, "verified": None}
    if not canonical:
        digest = registry_sha256(path)
        source.update(sha256=digest, verified=digest == UNLABELLED[1])
    labelled = set(pick_classes(class_pool(folder), 20)) if canonical else set()
    per_class = max(1, n // OTHER_CLASSES)
    cache = cache_dir() / f"tinyimagenet_unlabelled_{registry_source_key(path)}_{per_class}.npz"
    with file_lock(cache):
        if cache.exists():
            x = np.load(cache)["x"]
        else:
            x = _read_unlabelled(folder, canonical, labelled, per_class)
            with atomic_path(cache) as tmp:
                with open(tmp, "wb") as f:
                    np.savez(f, x=x)
    return torch.from_numpy(x[:n]).permute(0, 3, 1, 2).contiguous(), source


def _read_unlabelled(folder: Path, canonical: bool, labelled: set[str], per_class: int) -> np.ndarray:
    """The first ``per_class`` training images (by name) of every class not in ``labelled`` -> (M, 64, 64, 3)."""
    if canonical:
        members = _members_from_folder(folder / "tiny-imagenet-200", "train")
        where = folder / "tiny-imagenet-200"
    else:
        members = _members_from_tars(folder, "train", UNLABELLED[0])
        where = folder / UNLABELLED[0]
    by_class: dict[str, list] = {}
    for path, data in members:
        wnid = Path(path).parts[-3] if len(Path(path).parts) >= 3 else None
        if path.endswith(".JPEG") and wnid and wnid not in labelled:
            by_class.setdefault(wnid, []).append((path, data))
    chosen = [item for wnid in sorted(by_class) for item in sorted(by_class[wnid])[:per_class]]
    chosen = sorted(chosen, key=lambda item: (int(item[0].rsplit("_", 1)[-1].split(".")[0]), item[0]))  # classes mixed
    return (np.stack([_decode(data, path, where) for path, data in chosen]) if chosen
            else np.zeros((0, SIZE, SIZE, 3), np.uint8))


def source_key(folder: Path, canonical: bool) -> str:
    """The cache key of the images' source (the canonical folder or the staged archive)."""
    return registry_source_key(folder / ("tiny-imagenet-200" if canonical else STAGED))


def balanced_prefix(x: np.ndarray, y: np.ndarray, limit: int):
    """At most ``limit`` samples, taking the k-th image of every class before any (k+1)-th.

    Args:
        x, y: the samples and their (N,) class labels.
        limit: the most samples kept.

    Returns:
        (x, y) of the kept samples, in their original order.
    """
    rank = np.zeros(len(y), np.int64)
    for c in np.unique(y):
        idx = np.flatnonzero(y == c)
        rank[idx] = np.arange(len(idx))
    keep = np.sort(np.lexsort((y, rank))[:limit])
    return x[keep], y[keep]


def _names(folder: Path, wnids: list[str]) -> list[str]:
    words = folder / "tiny-imagenet-200" / "words.txt"
    words = words if words.exists() else folder / "words200.txt"
    table = dict(line.split("\t", 1) for line in words.read_text().splitlines() if "\t" in line)
    return [table.get(w, w).split(",")[0] for w in wnids]
