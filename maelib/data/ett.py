"""ETTh1 (hourly electricity-transformer data, 17,420 rows): the oil temperature OT as one series.

Chronological train/validation/test split (70/20/10 by default, never shuffled), a min-max scaler fit
on the training part only, and windows of ``lag`` past values that predict the next ``horizon``
values. Windows are cut inside each part, so none crosses a split boundary.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from .registry import locate

SPLITS = ("train", "val", "test")


def load_frame(data_dir=None, name: str = "ETTh1.csv") -> pd.DataFrame:
    folder = locate("ett", (name,), data_dir)
    return pd.read_csv(folder / name, parse_dates=["date"])


def split_sizes(n: int, fractions=(0.7, 0.2, 0.1)) -> tuple[int, int, int]:
    """Chronological part sizes: train and val are rounded down, test takes the rest."""
    if len(fractions) != 3 or any(f <= 0 for f in fractions) or abs(sum(fractions) - 1) > 1e-9:
        raise ValueError(f"split must be three positive fractions summing to 1, got {fractions}")
    n_train, n_val = int(n * fractions[0]), int(n * fractions[1])
    return n_train, n_val, n - n_train - n_val


@dataclass
class MinMax:
    """x -> (x - low) / (high - low), fit on the training part."""

    low: float
    high: float

    @classmethod
    def fit(cls, x: np.ndarray) -> "MinMax":
        return cls(float(np.min(x)), float(np.max(x)))

    def transform(self, x):
        return (np.asarray(x, float) - self.low) / (self.high - self.low)

    def inverse(self, x):
        return np.asarray(x, float) * (self.high - self.low) + self.low


def windows(series: np.ndarray, lag: int, horizon: int) -> tuple[np.ndarray, np.ndarray]:
    """All (past ``lag`` values, next ``horizon`` values) pairs inside one series: (M, lag), (M, horizon)."""
    m = len(series) - lag - horizon + 1
    if m < 1:
        raise ValueError(f"a part of {len(series)} values is too short for lag={lag} and horizon={horizon}")
    idx = np.arange(m)[:, None]
    return series[idx + np.arange(lag)], series[idx + lag + np.arange(horizon)]


def check_window(lag: int, horizon: int) -> None:
    if int(lag) < 1:
        raise ValueError(f"lag must be >= 1, got {lag}")
    if int(horizon) < 1:
        raise ValueError(f"horizon must be >= 1, got {horizon}")


def load(lag: int = 48, horizon: int = 1, data_dir=None, fractions=(0.7, 0.2, 0.1), column: str = "OT") -> dict:
    """Scaled windows per part and what is needed to undo the scaling.

    Returns ``dict(train=(X, Y), val=(X, Y), test=(X, Y), scaler=MinMax, raw={part: 1-D array},
    dates={part: DatetimeIndex}, sizes=(n_train, n_val, n_test))`` with X (M, lag) and Y (M, horizon)
    on the [0, 1] training scale (float32).
    """
    check_window(lag, horizon)
    df = load_frame(data_dir)
    if column not in df:
        raise ValueError(f"column must be one of {list(df.columns[1:])}, got {column!r}")
    sizes = split_sizes(len(df), fractions)
    bounds = np.cumsum((0,) + sizes)
    values = df[column].to_numpy(float)
    parts = {s: values[bounds[i]:bounds[i + 1]] for i, s in enumerate(SPLITS)}
    scaler = MinMax.fit(parts["train"])
    out = {"scaler": scaler, "raw": parts, "sizes": sizes,
           "dates": {s: pd.DatetimeIndex(df["date"].iloc[bounds[i]:bounds[i + 1]]) for i, s in enumerate(SPLITS)}}
    for s in SPLITS:
        x, y = windows(scaler.transform(parts[s]), lag, horizon)
        out[s] = (x.astype(np.float32), y.astype(np.float32))
    return out
