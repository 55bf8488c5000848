"""Importable helpers for the module tests (functions for ``python``, fake plugins)."""
