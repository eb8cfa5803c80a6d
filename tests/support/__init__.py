"""Helpers shared by the test modules (export writers, fixtures)."""
