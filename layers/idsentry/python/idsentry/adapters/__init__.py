"""Adapters to AWS and third-party services, each behind a small interface with an injected client."""
