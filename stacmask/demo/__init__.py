"""`stacmask demo`: synthetic CBERS-4A WPM scenes built into a catalog with no network."""
