"""CDKTF constructs for the design's tiers; see README.md."""
