"""Command-line wiring, benchmarks and reports."""
