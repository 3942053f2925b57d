"""Evaluation in physical space on autoregressive rollouts."""
