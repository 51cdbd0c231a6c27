"""Tests of flask_analytics.lifecycle."""
