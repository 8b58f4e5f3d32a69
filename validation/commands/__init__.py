"""One module per ``ckkslab`` sub-command."""
