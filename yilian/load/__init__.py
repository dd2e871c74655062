"""Loading: landing Parquet partitions and the DuckDB raw, quarantine and audit tables."""
