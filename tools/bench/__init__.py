"""Benchmarks, one module each: `run(...)` returns the JSON report, `describe(report)` its text.
`target` and `timing` hold what they share; `suite` (`bench all`) runs them together."""
