"""What may enter the warehouse: check columns, the GX suites' verdicts, and quarantine."""
