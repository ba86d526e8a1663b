"""Verify: the source's own TF model and the converted PyTorch model on the same inputs,
each output judged against the measured float32 noise (gate.py); the TF references are the
runners a table names (runners.py)."""
