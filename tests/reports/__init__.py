"""Tests of flask_analytics.reports."""
