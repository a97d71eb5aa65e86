"""Reports: the read API's parameters, queries, records and endpoints."""
