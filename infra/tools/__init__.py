"""Developer tools: synthetic data for tests, benchmarks and the demo."""
