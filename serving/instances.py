"""Request instances (JSON objects of raw values) from a data frame, as a client would send them."""

from __future__ import annotations

import math

import pandas as pd


def from_frame(frame: pd.DataFrame, columns: list[str] | None = None) -> list[dict]:
    """One dict per row; missing values are left out, numpy scalars become Python numbers."""
    cols = list(columns) if columns is not None else list(frame.columns)
    out = []
    for row in frame[cols].itertuples(index=False):
        instance = {}
        for name, value in zip(cols, row, strict=True):
            if value is None or (isinstance(value, float) and math.isnan(value)):
                continue
            instance[name] = value.item() if hasattr(value, "item") else value
        out.append(instance)
    return out
