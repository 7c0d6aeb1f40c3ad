"""The network tier: `Network` (network.py) and its config (config.py)."""
