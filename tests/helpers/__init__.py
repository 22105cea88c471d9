"""Shared test helpers (synthetic data builders); import as `from tests.helpers import ...`."""

from tests.helpers.synthetic_flame import synthetic_flame_dict, write_synthetic_flame

__all__ = ["synthetic_flame_dict", "write_synthetic_flame"]
