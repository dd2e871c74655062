"""What may enter the warehouse: check columns, the GX suites' verdicts, and quarantine."""

#: GX renders one source's Data Docs at a time (each render rewrites the site's index): their
#: tasks take this one-slot Airflow pool, so a render never holds the other executor slot from
#: the night's extracts and loads.
DATA_DOCS_POOL = "yilian_data_docs"
