"""Reading the weights of a Keras ``model.h5`` with h5py only: the tf-keras 2 and the Keras 3 layouts.

tf-keras 2 (``save_weights``, or a full ``save`` that puts them in the group ``model_weights``): the root
attribute ``layer_names`` lists the layers, and group ``<layer>`` lists its arrays in its attribute
``weight_names``. Keras 3 (``save_weights``): the arrays of a layer are ``layers/<layer>/vars/0``, ``1``, ...

Every array is checked before it is read: a numeric dataset, stored in model.h5 itself
(``nn.hdf5_storage``), of at most ``MAX_WEIGHTS_PER_ARRAY`` values; and after: every value finite.
:func:`read_weights` is meant to run in a child process (``nn.hdf5_sandbox``): a corrupted file that crashes
or hangs the HDF5 library costs that process only.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import h5py
import numpy as np

from nn.errors import ModelFormatError
from nn.hdf5_sandbox import HDF5_ERRORS
from nn.hdf5_storage import read_float64, storage_outside

# The largest weight array read, and the widest layer: far beyond any network this project encrypts (a Dense
# of 2^11 x 2^11), small enough that a file declaring a huge sparse dataset is refused before anything is
# allocated.
MAX_WEIGHTS_PER_ARRAY = 1 << 22


def read_weights(path: Path, names: list[str]) -> dict[str, list[np.ndarray]]:
    """The weight arrays (kernel, then bias if any) of every Dense layer in ``names``, by layer name.

    Raises:
        ModelFormatError: ``path`` is not HDF5 or is corrupted, a layer has no weights or more than two
            arrays, or an array fails the checks of :func:`_read_array`.
    """
    try:
        handle = h5py.File(path, "r")
    except HDF5_ERRORS as exc:
        raise ModelFormatError(f"{path} is not an HDF5 file: {exc}") from None
    try:
        with handle:
            return _weights_in(handle, names)
    except ModelFormatError:
        raise
    except HDF5_ERRORS as exc:
        raise ModelFormatError(f"{path} is corrupted ({type(exc).__name__}: {exc}); re-export the "
                               "weights") from None


def _weights_in(handle: h5py.File, names: list[str]) -> dict[str, list[np.ndarray]]:
    """The weights of layers ``names`` in the tf-keras 2 layout (attribute ``layer_names``) or Keras 3's."""
    path = handle.filename  # what every array must be stored in, whatever group links lead to it
    root = handle.get("model_weights", handle)  # a full tf-keras save keeps the weights in a group
    if not isinstance(root, h5py.Group):
        raise ModelFormatError(f"{path}: 'model_weights' is not a group")
    if "layer_names" in root.attrs:
        return {name: _keras2_weights(root, name, path) for name in names}
    layers_group = root.get("layers")
    if isinstance(layers_group, h5py.Group):
        return {name: _keras3_weights(layers_group, name, path) for name in names}
    raise ModelFormatError(f"{path} is neither a Keras 2 nor a Keras 3 weights file")


def _keras2_weights(root: h5py.Group, name: str, path: str) -> list[np.ndarray]:
    """tf-keras 2: group ``<name>`` lists its arrays in the attribute ``weight_names``."""
    group = root.get(name)
    if not isinstance(group, h5py.Group):
        raise ModelFormatError(f"{path} has no weights for layer '{name}'")
    names = _text_attribute(group, "weight_names")
    if names is None:
        raise ModelFormatError(f"{path}: layer '{name}' has no list of strings 'weight_names'")
    return _read_arrays([group.get(n) for n in names], name, path)


def _keras3_weights(layers_group: h5py.Group, name: str, path: str) -> list[np.ndarray]:
    """Keras 3: ``layers/<name>/vars/<i>``, or else the group whose ``vars`` records the layer's name in its
    attribute ``name`` (Keras 3 writes it on each vars group)."""
    group = layers_group.get(name)
    if not isinstance(group, h5py.Group):
        group = next((candidate for candidate in layers_group.values()
                      if isinstance(candidate, h5py.Group) and isinstance(candidate.get("vars"), h5py.Group)
                      and _text_attribute(candidate["vars"], "name") == [name]), None)
    variables = group.get("vars") if group is not None else None
    if not isinstance(variables, h5py.Group):
        raise ModelFormatError(f"{path} has no weights for layer '{name}'")
    return _read_arrays([variables.get(str(i)) for i in range(len(variables))], name, path)


def _text_attribute(obj: h5py.HLObject, key: str) -> list[str] | None:
    """An attribute holding a string or a 1-D array of strings (UTF-8 bytes or str), else None."""
    value = obj.attrs.get(key)
    items = value.tolist() if isinstance(value, np.ndarray) and value.ndim == 1 else [value]
    if not all(isinstance(item, str | bytes) for item in items):
        return None
    try:
        return [item.decode("utf-8") if isinstance(item, bytes) else item for item in items]
    except UnicodeDecodeError:
        return None


def _read_arrays(arrays: list[Any], layer: str, path: str) -> list[np.ndarray]:
    """At most two arrays (a kernel and a bias), each read by :func:`_read_array`."""
    if len(arrays) > 2:
        raise ModelFormatError(f"{path}: layer '{layer}' has {len(arrays)} weight arrays; a Dense layer "
                               "has a kernel and a bias")
    return [_read_array(array, layer, path) for array in arrays]


def _read_array(dataset: Any, layer: str, path: str) -> np.ndarray:
    """A weight array as float64. Checked from the header, before reading: a numeric dataset, whose values
    are stored in ``path`` itself, of at most ``MAX_WEIGHTS_PER_ARRAY`` values; after: every value finite."""
    if not isinstance(dataset, h5py.Dataset) or dataset.shape is None or dataset.dtype.kind not in "fiu":
        raise ModelFormatError(f"{path}: the weights of layer '{layer}' are not an array of numbers")
    elsewhere = storage_outside(dataset, path)
    if elsewhere is not None:
        raise ModelFormatError(f"{path}: the weights of layer '{layer}' are stored in {elsewhere}, not in "
                               "model.h5; refusing to read them: re-export the weights")
    if dataset.size > MAX_WEIGHTS_PER_ARRAY:
        raise ModelFormatError(f"{path}: layer '{layer}' declares a weight array of shape {dataset.shape} "
                               f"(more than {MAX_WEIGHTS_PER_ARRAY} values); refusing to read it")
    values = read_float64(dataset)
    if not np.all(np.isfinite(values)):
        raise ModelFormatError(f"{path}: the weights of layer '{layer}' hold NaN or infinite values; "
                               "retrain the model or fix its weights")
    return values
