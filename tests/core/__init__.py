"""Tests of flask_analytics.core."""
