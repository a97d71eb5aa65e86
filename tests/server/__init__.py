"""Real `calltrail serve` processes: startup, faults, request deadlines."""
