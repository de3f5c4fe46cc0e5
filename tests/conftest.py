"""Shared fixtures. Real data comes from MAELIB_DATA (../shared/data on this project's machines)."""

import os
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared" / "data"
if "MAELIB_DATA" not in os.environ and SHARED.exists():
    os.environ["MAELIB_DATA"] = str(SHARED)

torch.set_num_threads(min(2, torch.get_num_threads()))


def data_folder(name: str) -> Path:
    root = os.environ.get("MAELIB_DATA")
    path = Path(root) / name if root else None
    if path is None or not path.exists():
        pytest.skip(f"real data folder {name}/ not found under MAELIB_DATA={root!r}")
    return path


@pytest.fixture
def isolated_cache(tmp_path, monkeypatch):
    """A fresh maelib cache folder, so a test neither reads nor writes the user's cache."""
    monkeypatch.setenv("MAELIB_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"
