"""Framework shared by every tier: configuration, naming, stacks, targets."""
