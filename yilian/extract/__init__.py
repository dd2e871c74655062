"""Extraction: read one business day from each source system over its real protocol."""
