"""The calltrail command."""
