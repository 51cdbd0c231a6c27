"""The ingest pipeline: request parsing, named steps, privacy, user agents, geo, referrers."""
