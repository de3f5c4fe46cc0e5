"""ETT-small (electricity-transformer data; ETTh1 by default, 17,420 hourly rows): the oil temperature OT
as one series. ETTh2 (hourly) and ETTm1, ETTm2 (every 15 minutes) load the same way.

Two protocols. The seed paper's (:func:`load`): a chronological train/validation/test split (70/20/10 by
default, never shuffled), a min-max scaler fit on the training part only, and windows of ``lag`` past
values that predict the next ``horizon`` values, cut inside each part, so none crosses a split boundary.
The long-horizon literature's (:func:`load_months`, the split of Informer, DLinear and PatchTST): 12
months to train, the next 4 to validate, the next 4 to test, a standard scaler fit on the training months
only, and the inputs of validation and test windows may reach back ``lag`` rows into the part before.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from .registry import DataCorruptError, locate, provenance

SPLITS = ("train", "val", "test")
FILES = {"ETTh1": "ett", "ETTh2": "etth2", "ETTm1": "ettm1", "ETTm2": "ettm2"}  # file stem -> registry name
ROWS = {"ETTh1": 17_420, "ETTh2": 17_420, "ETTm1": 69_680, "ETTm2": 69_680}
COLUMNS = ["date", "HUFL", "HULL", "MUFL", "MULL", "LUFL", "LULL", "OT"]


def _step(dataset: str) -> pd.Timedelta:
    return pd.Timedelta("15min" if dataset.startswith("ETTm") else "1h")


def validate(df: pd.DataFrame, path: Path, step: pd.Timedelta) -> None:
    """Refuse a damaged ETT table with a :class:`DataCorruptError` naming the file, the column and the line.

    Every ETT column must be present, every value a finite number, the dates one ``step`` apart without gaps.

    Args:
        df: the table as read, dates unparsed.
        path: the file it came from, for the message (the header is line 1).
        step: the dataset's time step (1 h or 15 min).
    """
    missing = [c for c in COLUMNS if c not in df]
    if missing:
        raise DataCorruptError(f"{path} lacks the column(s) {missing}; an ETT file has {COLUMNS}")
    for col in COLUMNS[1:]:
        values = pd.to_numeric(df[col], errors="coerce")
        bad = ~np.isfinite(values.to_numpy(float))
        if bad.any():
            i = int(np.argmax(bad))
            raise DataCorruptError(f"{path}, column {col}, line {i + 2}: {df[col].iloc[i]!r} is not a finite number")
    dates = pd.to_datetime(df["date"], errors="coerce")
    if dates.isna().any():
        i = int(np.argmax(dates.isna().to_numpy()))
        raise DataCorruptError(f"{path}, column date, line {i + 2}: {df['date'].iloc[i]!r} is not a date")
    gaps = np.flatnonzero(dates.diff().iloc[1:].to_numpy() != step.to_timedelta64()) + 1
    if len(gaps):
        i = int(gaps[0])
        raise DataCorruptError(f"{path}, column date, line {i + 2}: {dates.iloc[i]} follows {dates.iloc[i - 1]}, "
                               f"not {step} later (the series must be continuous)")


def load_frame(data_dir=None, dataset: str = "ETTh1") -> tuple[pd.DataFrame, dict]:
    """The checked file as a frame with parsed dates, and its provenance (see
    :func:`maelib.data.registry.provenance`: a copy that is not the canonical file is used only if it is
    a valid ETT series, and is marked unverified)."""
    if dataset not in FILES:
        raise ValueError(f"dataset must be one of {list(FILES)}, got {dataset!r}")
    name = f"{dataset}.csv"
    path = locate(FILES[dataset], (name,), data_dir) / name
    source = provenance(FILES[dataset], path)
    try:
        df = pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[""])
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as e:
        raise DataCorruptError(f"{path} is not a readable CSV file ({str(e).splitlines()[0]})") from None
    validate(df, path, _step(dataset))
    df = df.astype({c: float for c in COLUMNS[1:]})
    df["date"] = pd.to_datetime(df["date"])
    return df, source


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
    """All (past ``lag`` values, next ``horizon`` values) pairs inside one series.

    Args:
        series: (T,) values.
        lag, horizon: the steps in each input and each target.

    Returns:
        (inputs (M, lag), targets (M, horizon)), M = T - lag - horizon + 1, in time order.
    """
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


def load(lag: int = 48, horizon: int = 1, data_dir=None, fractions=(0.7, 0.2, 0.1), column: str = "OT",
         dataset: str = "ETTh1") -> dict:
    """Scaled windows per part and what is needed to undo the scaling.

    Args:
        lag, horizon: the steps in each input and each target.
        data_dir: the root holding the dataset's folder (the only one looked in); None: MAELIB_DATA, then the cache.
        fractions: the shares of the rows in training, validation and test, in time order.
        column: the series to forecast.
        dataset: one of the four ETT files.

    Returns:
        ``dict(train=(X, Y), val=(X, Y), test=(X, Y), scaler=MinMax, raw={part: 1-D array},
        dates={part: DatetimeIndex}, sizes=(n_train, n_val, n_test), source=provenance)`` with X (M, lag)
        and Y (M, horizon) on the [0, 1] training scale (float32).
    """
    check_window(lag, horizon)
    df, source = load_frame(data_dir, dataset)
    if column not in df:
        raise ValueError(f"column must be one of {list(df.columns[1:])}, got {column!r}")
    sizes = split_sizes(len(df), fractions)
    bounds = np.cumsum((0,) + sizes)
    values = df[column].to_numpy(float)
    parts = {s: values[bounds[i]:bounds[i + 1]] for i, s in enumerate(SPLITS)}
    scaler = MinMax.fit(parts["train"])
    out = {"scaler": scaler, "raw": parts, "sizes": sizes, "source": source,
           "dates": {s: pd.DatetimeIndex(df["date"].iloc[bounds[i]:bounds[i + 1]]) for i, s in enumerate(SPLITS)}}
    for s in SPLITS:
        x, y = windows(scaler.transform(parts[s]), lag, horizon)
        out[s] = (x.astype(np.float32), y.astype(np.float32))
    return out


MONTH_SPLIT = (12, 4, 4)  # months of training, validation and test in the long-horizon protocol


def rows_per_month(dataset: str) -> int:
    """30 days of rows: 720 for the hourly files, 2,880 for the 15-minute ones."""
    return 30 * 24 * (4 if dataset.startswith("ETTm") else 1)


@dataclass
class Standard:
    """x -> (x - mean) / std, fit on the training part (population std, as scikit-learn's StandardScaler)."""

    mean: float
    std: float

    @classmethod
    def fit(cls, x: np.ndarray) -> "Standard":
        return cls(float(np.mean(x)), float(np.std(x)))

    def transform(self, x):
        return (np.asarray(x, float) - self.mean) / self.std

    def inverse(self, x):
        return np.asarray(x, float) * self.std + self.mean


def month_bounds(dataset: str, n_rows: int) -> tuple[int, int, int]:
    """Row indices where training, validation and test end (12, 16 and 20 months); the rows after are unused."""
    ends = tuple(int(v) for v in np.cumsum(MONTH_SPLIT) * rows_per_month(dataset))
    if ends[-1] > n_rows:
        raise ValueError(f"{dataset} has {n_rows} rows, fewer than the {ends[-1]} of the 12/4/4-month split")
    return ends


def split_months(values: np.ndarray, lag: int, ends: tuple[int, int, int]) -> dict:
    """Each part's stretch of ``values``, by the parts' end rows ``ends``.

    Training starts at row 0; validation and test start ``lag`` rows before their own first row, so that
    their first window's input lies in the part before.

    Returns:
        {part: 1-D array} for train, val and test.
    """
    starts = (0, ends[0] - lag, ends[1] - lag)
    return {s: values[a:b] for s, a, b in zip(SPLITS, starts, ends)}


def load_months(lag: int = 336, horizon: int = 96, data_dir=None, column: str = "OT", dataset: str = "ETTh1") -> dict:
    """The long-horizon protocol's scaled windows: every window of each part, none dropped.

    Args:
        lag, horizon: the steps in each input and each target.
        data_dir: the root holding the dataset's folder (the only one looked in); None: MAELIB_DATA, then the cache.
        column: the series to forecast.
        dataset: one of the four ETT files.

    Returns:
        ``dict(train=(X, Y), val=(X, Y), test=(X, Y), scaler=Standard, scaled={part: 1-D array},
        ends=(train_end, val_end, test_end), source=provenance)`` with X (M, lag) and Y (M, horizon) float32
        on the training months' standard scale; a validation or test part of R rows has R - horizon + 1
        windows.
    """
    check_window(lag, horizon)
    df, source = load_frame(data_dir, dataset)
    if column not in df:
        raise ValueError(f"column must be one of {list(df.columns[1:])}, got {column!r}")
    ends = month_bounds(dataset, len(df))
    if lag > ends[0] - horizon:
        raise ValueError(f"lag + horizon = {lag + horizon} exceeds the {ends[0]} training rows")
    values = df[column].to_numpy(float)
    scaler = Standard.fit(values[:ends[0]])  # the training months only
    scaled = split_months(scaler.transform(values), lag, ends)
    out = {"scaler": scaler, "scaled": scaled, "ends": ends, "source": source}
    for s in SPLITS:
        x, y = windows(scaled[s], lag, horizon)
        out[s] = (x.astype(np.float32), y.astype(np.float32))
    return out
