"""The bench suite: cold start and AWS requests per unit of work, written to docs/benchmarks.md."""
