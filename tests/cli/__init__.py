"""Tests of flask_analytics.cli."""
