"""Business logic with no I/O of its own; adapters are passed in."""
