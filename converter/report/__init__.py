"""Report: what a conversion and its parity check found, for people and machines —
conversion_report.json, parity_report.{json,md,png}, the model card, the batch summary."""
