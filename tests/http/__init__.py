"""What every HTTP answer shares: errors, health, metrics, the dashboard's files, OpenAPI."""
