"""Tests of flask_analytics.web."""
