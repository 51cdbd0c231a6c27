"""Tests of flask_analytics.tasks."""
