"""Everything around the four roles: the command line (cli/), the demonstration deployment
(deploy/), experiments (experiments/), benchmarks (bench/), the labs (labs/) and the emulated Pi (pi/)."""
