"""Privacy: replace personal data by pseudonyms before anything leaves extraction."""
