"""Run analysis: ``ups analyze`` and ``ups compare`` over local records and W&B."""
