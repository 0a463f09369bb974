"""The command-line layer: every console entry point.  The only layer that imports Hydra."""
