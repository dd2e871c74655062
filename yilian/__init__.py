"""yilian: nightly ETL for a medical-alliance regional health data warehouse."""
