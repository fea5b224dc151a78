"""The reliability suite: scenarios record their figures, and `make chaos` writes docs/reliability.md."""
