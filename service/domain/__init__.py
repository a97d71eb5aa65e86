"""Pure logic with no I/O: keys, clocks, and (later) CCC hash parsing and the session state machine."""
