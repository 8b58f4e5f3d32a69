"""The loaders' fuzz harness: every ckkslab loader on mutated and crafted inputs, each input in a forked
worker, its outcome judged by an oracle. ``python benchmarks/fuzz_loaders.py`` runs it (cli.py). By role:

    draw.py                    where the mutations get their choices (seeded numpy; hypothesis in the tests)
    mutators.py                byte, JSON-tree, CSV-table and container mutations; crafted JSON edge cases
    oracle.py                  a loader under test (Loader), the outcome of one input, a loader's counts
    worker.py                  memory cap, peak RSS, the forked worker, a loader's run
    targets.py                 every loader under test, selected by name
    targets_ckks.py            ckks.from_bytes on every serializable type
    targets_nn_artifacts.py    nn's own files: model and ciphertext containers, context/plan.json
    targets_nn_user_files.py   the files a user brings: Keras model directory, HDF5 x/y, CSV tables
    cli.py                     the command line
"""
