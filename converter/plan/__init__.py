"""Plan: a source's tensors against its table, every tensor given a fate (mapped, ignored, …) and
every target parameter accounted for; the head decided; the source config in transformers' terms.
No bytes are read here (analysis.py is the entry point)."""
