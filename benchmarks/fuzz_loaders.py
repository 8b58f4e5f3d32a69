"""Fuzz every loader of ckkslab (the harness is the package benchmarks/fuzz/: what is fuzzed, how, and what
counts as a bug are in its modules' docstrings):

    python benchmarks/fuzz_loaders.py --per-loader 100000 --json out/fuzz.json     # the long run
    python benchmarks/fuzz_loaders.py --per-loader 2000 --loaders ckks.ciphertext,nn.csv
    python benchmarks/fuzz_loaders.py --list                                        # the loaders
"""

from benchmarks.fuzz.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
