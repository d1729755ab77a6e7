"""rasteret."""
