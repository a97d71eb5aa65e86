"""The security probe's findings, and what it found sound, kept so."""
