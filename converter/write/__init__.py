"""The write stage: what the converted output is stored as, and how it reaches the disk."""
