"""Administration: sites and keys, retention, quarantine."""
