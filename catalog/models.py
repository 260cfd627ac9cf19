"""Filled by the knowledge-base and catalog issue."""
