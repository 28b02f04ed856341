"""canary: moves traffic from a stable to a canary upstream on a schedule, rolls back alone."""
