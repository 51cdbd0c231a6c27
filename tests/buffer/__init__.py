"""Tests of flask_analytics.buffer."""
