"""Profile-my-data agents beyond the profiler: risk, test coverage, readiness and governance."""
