"""Cross-cutting tests: real processes under load, crashes, faults and fuzzing."""
