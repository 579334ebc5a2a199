"""Fallbacks: what answers when a limit, a check or the provider fails
(docs/quality-and-fallbacks.md)."""
