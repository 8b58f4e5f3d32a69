"""The paper's HElayers (pyhelayers) flow: the only package that imports pyhelayers."""
