"""Checks over synthesized stacks: the IAM policy evaluator (iam.py) and the design's rule pack (rules/)."""
