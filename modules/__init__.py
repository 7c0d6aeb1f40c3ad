"""CDKTF constructs for the design's tiers; see README.md."""

from modules.core import jsii_node

# Before any jsii package starts the Node kernel: see modules/core/jsii_node.py.
jsii_node.prepare()
