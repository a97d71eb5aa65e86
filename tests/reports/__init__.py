"""The read API's reports."""
