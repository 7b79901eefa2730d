"""Helpers for driving a headless Chromium from tests."""
