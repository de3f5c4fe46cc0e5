import subprocess
import sys
import time

import pytest

from maelib import profiles


def test_every_profile_is_valid():
    for chapter, by_profile in profiles.PROFILES.items():
        for name in profiles.PROFILE_NAMES:
            p = profiles.resolve(chapter, name)
            assert p.profile == name


def test_overrides_win_and_none_means_profile_default():
    p = profiles.resolve("images", "smoke", mask_ratio=0.5, pretrain_epochs=None)
    assert p.mask_ratio == 0.5
    assert p.pretrain_epochs == profiles.PROFILES["images"]["smoke"]["pretrain_epochs"]


@pytest.mark.parametrize("kw, msg", [
    ({"mask_ratio": 1.5}, r"mask_ratio must be in \(0, 1\), got 1.5"),
    ({"mask_ratio": 0}, r"mask_ratio must be in \(0, 1\)"),
    ({"n_classes": 500}, r"n_classes must be in \[2, 200\]"),
    ({"pretrain_epochs": 0}, r"pretrain_epochs must be in \[1, inf\)"),
    ({"batch_size": "many"}, r"batch_size must be an integer"),
    ({"img_size": 60, "patch_size": 8}, r"img_size \(60\) must be a multiple of patch_size \(8\)"),
    ({"masking": 0.5}, r"unknown parameter 'masking'"),
    ({"profile": "huge"}, r"profile must be one of"),
])
def test_bad_parameters_are_refused_with_their_name(kw, msg):
    with pytest.raises(ValueError, match=msg):
        profiles.resolve("images", **{"profile": "smoke", **kw})


def test_cli_refuses_bad_input_before_any_compute():
    t = time.time()
    r = subprocess.run([sys.executable, "-m", "maelib", "run", "images", "-p", "mask_ratio", "1.2", "--no-book"],
                       capture_output=True, text=True)
    assert r.returncode == 2
    assert "mask_ratio must be in (0, 1), got 1.2" in r.stderr
    assert time.time() - t < 30


def test_cli_refuses_unknown_chapter():
    r = subprocess.run([sys.executable, "-m", "maelib", "run", "sounds"], capture_output=True, text=True)
    assert r.returncode == 2 and "unknown chapter 'sounds'" in r.stderr
