"""`stacmask build`: source search, one scene through read -> method -> output, the build loop."""
