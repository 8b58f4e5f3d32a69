"""Side-by-side validation of plaintext, ckkslab and HElayers, and the ``ckkslab`` command line."""
