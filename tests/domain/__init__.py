"""The pure logic: hash parsing, the session fold, actions, PII."""
