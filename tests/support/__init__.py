"""Helpers shared by test modules. Test files import from here (or from tests/fakes, tests/backends, ...), never
from one another: tests/test_suite.py checks it."""
