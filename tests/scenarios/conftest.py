"""Scenarios run through the CLI against every backend; the backends and their fixtures live in tests/backends.py
and tests/conftest.py."""
