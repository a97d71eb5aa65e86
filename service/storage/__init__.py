"""The database: engines, tables, migrations, column types, the raw event log and what a failed write means.
Knows nothing of HTTP."""
