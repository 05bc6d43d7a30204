"""Dashboards, recording rules and alerts generated from the policies file."""
