"""Voyagent: the API server of a travel-agency back office."""

__version__ = "0.1.0"
