"""In-app messages delivered through the host's own API (a custom event that triggers it)."""
