"""Shared contracts: feature keys, raw and output schemas, and the job configuration."""
