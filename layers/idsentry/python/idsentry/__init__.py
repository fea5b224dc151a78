"""Shared package for the IDSentry Lambda functions: services, adapters and models."""
