"""Every loader under test, by name: the targets_* modules build them, ``build_loaders`` selects them.

Loaders (the file each one reads, the function, its NAMED errors):

    ckks.<type>           ckks.from_bytes(buf, params=P) for parameters, plaintext, ciphertext, secret key,
                          public key, relinearization key, Galois keys, server bundle      SerializationError
    nn.model_container    nn.artifacts.model_from_bytes (server/model.ckks)                ArtifactError
    nn.cipher_container   nn.artifacts.ciphertexts_with_info (server/data.ckks, predictions.ckks)
                                                                                           ArtifactError
    nn.plan_json          nn.workflow.load_plan (context/plan.json)
                                                               WorkflowError, ArtifactError, CkksError
    nn.model_json         nn.model.load_network, model.json mutated                        ModelFormatError
    nn.model_h5           nn.model.load_network, model.h5 mutated                          ModelFormatError
    nn.model_meta         nn.model.load_network, ckkslab.json mutated                      ModelFormatError
    nn.data_h5            nn.data.load_xy, x_test.h5 / y_test.h5 mutated                    DataSchemaError
    nn.csv                nn.table.load_table, a .csv mutated                               DataSchemaError
    nn.csv_zip            nn.table.load_table, a .zip holding one CSV mutated               DataSchemaError
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from .oracle import Loader
from .targets_ckks import ckks_loaders
from .targets_nn_artifacts import container_loaders, plan_loader
from .targets_nn_user_files import csv_loaders, data_loader, model_loaders

BUILDERS: dict[str, Callable[[], list[Loader]]] = {
    "ckks": ckks_loaders, "containers": container_loaders, "plan": lambda: [plan_loader()],
    "model": model_loaders, "data": lambda: [data_loader()], "csv": csv_loaders,
}


def build_loaders(names: Sequence[str] | None = None) -> list[Loader]:
    """Every loader, or those named in ``names`` by full name (``nn.csv``) or prefix (``ckks``, ``nn``)."""
    loaders = [ld for builder in BUILDERS.values() for ld in builder()]
    if names is None:
        return loaders
    kept = [ld for ld in loaders if any(ld.name == n or ld.name.startswith(n + ".") for n in names)]
    # A loader's cleanup may remove a directory its siblings read (the model files, the CSV work directory):
    # those of the loaders left out run with the first kept loader's, after the run.
    cleanups = [ld.cleanup for ld in loaders if ld.cleanup is not None and (ld not in kept or ld is kept[0])]
    if kept:
        kept[0].cleanup = lambda: [cleanup() for cleanup in cleanups]
    else:
        for cleanup in cleanups:
            cleanup()
    return kept
