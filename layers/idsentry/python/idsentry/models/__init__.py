"""Pydantic models for requests, bus events and queue jobs."""
