"""Where the values of an HDF5 dataset are stored (the check every HDF5 loader makes before reading one), and
reading them as float64.

An HDF5 file can hold a dataset whose values are not in the file itself: an external link (the dataset is in
another HDF5 file), external raw storage (``create_dataset(..., external=[(path, offset, size)])``: any local
file read as numbers) or a virtual dataset (a map of datasets of other files). Reading such a dataset would
copy another local file into the model's weights or the records; the loaders refuse it instead.
"""

from __future__ import annotations

import h5py
import numpy as np


def storage_outside(dataset: h5py.Dataset, filename: str) -> str | None:
    """What, outside the HDF5 file ``filename`` the dataset was reached from, holds its values; None when
    they are all in that file.

    Checked: the dataset belongs to ``filename`` itself (not reached through an external link), its raw data
    is not in external files, and it is not a virtual dataset.
    """
    if dataset.file.filename != filename:
        return f"another HDF5 file ({dataset.file.filename}, through an external link)"
    if dataset.external is not None:
        return f"external files {[name for name, _, _ in dataset.external][:3]}"
    if dataset.is_virtual:
        return "other datasets (it is a virtual dataset)"
    return None


def read_float64(dataset: h5py.Dataset) -> np.ndarray:
    """The dataset's values as float64. A value the conversion cannot hold becomes NaN or inf without a
    warning: the caller refuses non-finite values by name."""
    with np.errstate(invalid="ignore", over="ignore"):
        return np.asarray(dataset[()], dtype=np.float64)
