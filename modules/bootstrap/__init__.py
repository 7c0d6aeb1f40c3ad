"""The remote-state backend: `StateBackend` and `BootstrapStack` (state_backend.py)."""
