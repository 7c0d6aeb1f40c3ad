"""Architecture pictures drawn from the synthesized stacks (`python -m diagrams_gen`)."""
