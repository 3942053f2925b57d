"""The training loop shared by every stage, its optimiser/schedule/EMA and checkpoints."""
