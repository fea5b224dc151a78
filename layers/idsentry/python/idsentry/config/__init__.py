"""Configuration files that ship inside the idsentry package, read with importlib.resources."""
