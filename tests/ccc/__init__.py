"""The CCC call-record pull against a fake CCC API, through the official SDK."""
