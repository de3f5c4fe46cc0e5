"""California housing (Géron's version: 20,640 districts, ocean_proximity, 207 missing total_bedrooms).

The paper's preprocessing: drop rows with missing values (20,433 remain), one-hot encode
ocean_proximity, split rows into train/test at random, and scale every feature to [0, 1] with the
training rows' minimum and maximum.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .registry import DataCorruptError, locate, provenance

NUMERIC = ["longitude", "latitude", "housing_median_age", "total_rooms", "total_bedrooms", "population",
           "households", "median_income", "median_house_value"]
CATEGORIES = ["<1H OCEAN", "INLAND", "ISLAND", "NEAR BAY", "NEAR OCEAN"]
ONE_HOT = [f"ocean_proximity={c}" for c in CATEGORIES]
COLUMNS = NUMERIC + ONE_HOT


def load_frame(data_dir=None) -> tuple[pd.DataFrame, dict]:
    """Géron's housing.csv, its columns checked, and its provenance (registry checksum)."""
    path = locate("housing", ("housing.csv",), data_dir) / "housing.csv"
    try:
        df = pd.read_csv(path)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as e:
        raise DataCorruptError(f"{path} is not a readable CSV file ({str(e).splitlines()[0]})") from None
    missing = [c for c in NUMERIC + ["ocean_proximity"] if c not in df]
    if missing:
        raise DataCorruptError(f"{path} lacks the column(s) {missing}; the study reads {NUMERIC + ['ocean_proximity']}")
    for col in NUMERIC:
        values = pd.to_numeric(df[col], errors="coerce")
        bad = values.isna() & df[col].notna() | np.isinf(values)
        if bad.any():
            i = int(np.argmax(bad.to_numpy()))
            raise DataCorruptError(f"{path}, column {col}, line {i + 2}: {df[col].iloc[i]!r} is not a finite number")
    unknown = sorted(set(df["ocean_proximity"].dropna()) - set(CATEGORIES))
    if unknown:
        raise DataCorruptError(f"{path}, column ocean_proximity: unknown categories {unknown}; expected {CATEGORIES}")
    return df, provenance("housing", path)


def preprocess(df: pd.DataFrame) -> pd.DataFrame:
    """Drop incomplete rows and one-hot encode ocean_proximity: -> (20,433, 14) float frame."""
    df = df.dropna().reset_index(drop=True)
    onehot = pd.get_dummies(pd.Categorical(df["ocean_proximity"], categories=CATEGORIES), dtype=float)
    onehot.columns = ONE_HOT
    return pd.concat([df[NUMERIC].astype(float), onehot], axis=1)


def select_columns(columns: list[str] | None) -> list[str]:
    if not columns:
        return list(COLUMNS)
    unknown = [c for c in columns if c not in COLUMNS]
    if unknown:
        raise ValueError(f"unknown column(s) {unknown}; columns must be among {COLUMNS}")
    return list(columns)


def load(seed: int = 0, test_fraction: float = 0.2, columns: list[str] | None = None, data_dir=None,
         rows: int | None = None) -> dict:
    """Scaled train and test matrices of the housing table's complete rows.

    Args:
        seed: draws the rows' order, hence the split.
        test_fraction: the share of the rows held out for test.
        columns: the columns kept, in this order; None keeps all.
        data_dir: the root holding the dataset's folder (the only one looked in); None: MAELIB_DATA, then the cache.
        rows: keep a random subset of that many rows (the smoke profile); None keeps all.

    Returns:
        ``dict(train=(N, F), test=(M, F), columns=[...], low=(F,), high=(F,), n_rows, source=provenance)``,
        float32 in [0, 1] on the training rows (test rows may fall slightly outside).
    """
    cols = select_columns(columns)
    raw, source = load_frame(data_dir)
    frame = preprocess(raw)[cols]
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(frame))[:rows]
    n_test = int(round(len(order) * test_fraction))
    test, train = frame.to_numpy()[order[:n_test]], frame.to_numpy()[order[n_test:]]
    low, high = train.min(0), train.max(0)
    span = np.where(high > low, high - low, 1.0)
    return {"train": ((train - low) / span).astype(np.float32), "test": ((test - low) / span).astype(np.float32),
            "columns": cols, "low": low, "high": high, "n_rows": len(frame), "source": source}


def hide(x: np.ndarray, missing_rate: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Hide each cell independently with probability ``missing_rate``; hidden cells become 0.

    Args:
        x: (N, F) values.
        missing_rate: in (0, 1).
        seed: draws the hidden cells.

    Returns:
        (zero-filled float32 matrix, observed mask), the mask True where a cell is kept.
    """
    if not 0 < missing_rate < 1:
        raise ValueError(f"missing_rate must be in (0, 1), got {missing_rate}")
    observed = np.random.default_rng(seed).random(x.shape) >= missing_rate
    return np.where(observed, x, 0.0).astype(np.float32), observed
