"""Tests of flask_analytics.ingest."""
