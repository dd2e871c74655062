"""Validation: Great Expectations suites decide which landed rows may enter the warehouse."""
