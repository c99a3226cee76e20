"""A tiny analysis for batch tests: per-image statistics, a label image, optional delay/failure."""

import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd


@dataclass
class Stats:
    image: object
    table: pd.DataFrame
    labels: np.ndarray

    def save(self, directory):
        d = Path(directory)
        self.table.to_csv(d / "table.csv", index=False)
        np.save(d / "labels.npy", self.labels)

    def summary(self):
        return {"rows": len(self.table)}

    def to_frame(self):
        return self.table

    def plot(self, ax):
        ax.imshow(self.labels)


def stats(mg, *, delay: float = 0.0, fail_value: float = -1.0):
    time.sleep(delay)
    data = mg.data
    if fail_value >= 0 and np.isclose(data.mean(), fail_value, atol=0.5):
        raise ValueError(f"refusing an image of mean {data.mean():.1f}")
    labels = (data > data.mean()).astype(np.uint8)
    table = pd.DataFrame(
        {
            "mean": [float(data.mean())],
            "max": [float(data.max())],
            "above": [int(labels.sum())],
            "pid": [os.getpid() * 0],
        }
    )
    return Stats(mg, table, labels)


stats.table_file = "table.csv"
stats.labels_file = "labels.npy"
