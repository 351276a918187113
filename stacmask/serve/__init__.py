"""`stacmask serve`, `search`, `export`: querying a built catalog, the STAC API, STAC Browser."""
