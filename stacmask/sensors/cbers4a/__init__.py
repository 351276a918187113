"""CBERS-4A WPM: INPE's asset layouts, per-band XML metadata, DN to TOA reflectance."""
