"""Foundation: errors, atomic writes, run folders, checkpoints, settings, distributed helpers.

Imports nothing of ours; every other package may import it."""
