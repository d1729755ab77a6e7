"""asv benchmarks of rasteret (run in the existing environment: ``asv run --python=same``)."""
