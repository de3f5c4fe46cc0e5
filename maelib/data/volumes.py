"""3D segmentation data as MONAI datasets: MSD Task04 Hippocampus (default) and BTCV (the paper's).

- Hippocampus: the staged ``hippocampus_msd_task04_train260_nii.tar.xz`` (unpacked once into the
  cache) or the MSD layout ``Task04_Hippocampus/{imagesTr,labelsTr}``. 260 MRI crops, labels 0/1/2,
  raw intensities (normalised per volume here), two label files stored as float (cast here).
- BTCV: the usual ``dataset_0.json`` + ``imagesTr``/``labelsTr`` layout (30 labelled CT volumes, 13
  organs). It needs a registration at synapse.org (Multi-Atlas Labeling Beyond the Cranial Vault):
  put the folder at ``$MAELIB_DATA/btcv``.
"""

from __future__ import annotations

import json
import lzma
import tarfile
from pathlib import Path

import numpy as np

from ..files import atomic_path, file_lock
from .registry import DataCorruptError, cache_dir, locate, provenance, sha256

BTCV_ORGANS = ["spleen", "right kidney", "left kidney", "gallbladder", "esophagus", "liver", "stomach", "aorta",
               "inferior vena cava", "portal and splenic veins", "pancreas", "right adrenal gland",
               "left adrenal gland"]
HIPPOCAMPUS_LABELS = ["anterior", "posterior"]
ARCHIVE = "hippocampus_msd_task04_train260_nii.tar.xz"


def hippocampus_files(data_dir=None) -> list[dict]:
    """[{"image": path, "label": path}, ...] for the 260 labelled cases, sorted by case id."""
    folder = locate("hippocampus", (ARCHIVE, "Task04_Hippocampus"), data_dir)
    if (folder / "Task04_Hippocampus").exists():
        root, images, labels = folder / "Task04_Hippocampus", "imagesTr", "labelsTr"
    else:
        # unpacked once per archive, keyed by its checksum: a replaced archive is unpacked anew, never read
        # through another's files (the provenance names the archive's checksum)
        root, images, labels = cache_dir() / "hippocampus" / sha256(folder / ARCHIVE)[:16], "images", "labels"
        with file_lock(root):  # unpacked once, even by runs that start together
            if not (root / "labels").exists():
                _unpack(folder / ARCHIVE, root)
    pairs = []
    for img in sorted((root / images).glob("hippocampus_*.nii*")):
        lab = root / labels / img.name
        if lab.exists():
            pairs.append({"image": str(img), "label": str(lab)})
    return pairs


def _unpack(archive: Path, root: Path) -> None:
    """The staged archive's cases into ``root`` (whole, or not at all)."""
    try:
        with atomic_path(root) as tmp, tarfile.open(archive, "r:xz") as tar:
            tar.extractall(tmp, filter="data")
    except (EOFError, tarfile.TarError, lzma.LZMAError) as e:
        raise DataCorruptError(f"{archive} is damaged ({type(e).__name__}: {e}); copy it again from the "
                               "staged data or fetch it (python -m maelib data fetch hippocampus)") from None


def hippocampus_source(data_dir=None) -> dict:
    """The provenance of the Hippocampus files read (the staged archive's checksum, or the folder)."""
    folder = locate("hippocampus", (ARCHIVE, "Task04_Hippocampus"), data_dir)
    path = folder / "Task04_Hippocampus" if (folder / "Task04_Hippocampus").exists() else folder / ARCHIVE
    return provenance("hippocampus", path)


def n_classes(kind: str) -> int:
    """Background and the foreground classes of ``kind`` (hippocampus: 3, btcv: 14)."""
    return 1 + len(HIPPOCAMPUS_LABELS if kind == "hippocampus" else BTCV_ORGANS)


def btcv_files(root: str | Path) -> dict[str, list[dict]]:
    """Training and validation pairs from a BTCV ``dataset_0.json`` (paths relative to its folder)."""
    root = Path(root)
    spec = json.loads((root / "dataset_0.json").read_text())
    out = {}
    for key, split in (("training", "train"), ("validation", "val")):
        out[split] = [{"image": str(root / e["image"]), "label": str(root / e["label"])} for e in spec.get(key, [])]
    if not out["train"]:
        raise ValueError(f"{root / 'dataset_0.json'} lists no training cases")
    return out


def split(pairs: list, val_fraction: float = 0.2, seed: int = 0, limit: int | None = None) -> dict[str, list]:
    """A seeded random train/val split.

    Args:
        pairs: the cases ({"image", "label"} paths).
        val_fraction: the share of the kept cases in val (at least one case).
        seed: draws the order.
        limit: keep that many cases in all, drawn at random; None keeps all.

    Returns:
        {"train": [...], "val": [...]}.
    """
    order = np.random.default_rng(seed).permutation(len(pairs))[:limit]
    n_val = max(1, int(round(len(order) * val_fraction)))
    return {"val": [pairs[i] for i in order[:n_val]], "train": [pairs[i] for i in order[n_val:]]}


def transforms(kind: str, roi: tuple[int, int, int], spacing: float | None = None):
    """MONAI dictionary transforms that load one case of ``kind`` in {"hippocampus", "btcv"}: channel
    first, integer labels, intensities normalised (per volume; BTCV: the -175..250 HU window to [0, 1],
    resampled to 1.5x1.5x2 mm and cropped to the body), padded to at least ``roi``. ``spacing``: the
    hippocampus resampled to that many mm a voxel on every axis (its files are at 1 mm; images bilinear,
    labels nearest) once loaded, before it is normalised; None keeps 1 mm. BTCV keeps the paper's spacing
    whatever ``spacing`` says. The random crops, flips and intensity scaling of training run batched on the
    device (:mod:`maelib.volumes`)."""
    from monai import transforms as T

    keys = ["image", "label"]
    steps = [T.LoadImaged(keys), T.EnsureChannelFirstd(keys)]
    if kind == "btcv":
        steps += [T.Orientationd(keys, axcodes="RAS"),
                  T.Spacingd(keys, pixdim=(1.5, 1.5, 2.0), mode=("bilinear", "nearest")),
                  T.ScaleIntensityRanged("image", a_min=-175, a_max=250, b_min=0.0, b_max=1.0, clip=True),
                  T.CropForegroundd(keys, source_key="image")]
    else:
        if spacing is not None:
            steps += [T.Spacingd(keys, pixdim=(spacing,) * 3, mode=("bilinear", "nearest"))]
        steps += [T.NormalizeIntensityd("image", nonzero=False, channel_wise=True)]
    steps += [T.CastToTyped("label", dtype=np.int64)]  # after any resampling, which returns floats
    return T.Compose(steps + [T.SpatialPadd(keys, spatial_size=roi), T.EnsureTyped(keys, track_meta=False)])
