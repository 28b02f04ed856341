"""Kong's rate-limiting plugin (§3.1): fixed, calendar-aligned windows per identifier."""
