"""The frontend tier: `Frontend` (frontend.py) and its config (config.py)."""
