"""Checks, one module per topic. No framework is imported at module level."""
