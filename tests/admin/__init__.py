"""Sites, origins and keys."""
