"""Mask methods: numpy in, numpy out, no I/O."""
