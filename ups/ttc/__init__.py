"""Test-time conditioning: physics rewards that score candidate next states."""
