"""The bench suite: cold start, AWS requests and breach intake, written to docs/benchmarks.md."""
