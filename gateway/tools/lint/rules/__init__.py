"""Lint rules, one module per policy section; each module lists its rules in ``RULES``."""
