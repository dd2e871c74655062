-- each remote-read study with its signed report, the modality's target and the requesting
-- facility's version (macros/joined_facts.sql)
{{ remote_reads_joined_to_reports() }}
