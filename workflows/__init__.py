"""Durable workflows: deterministic code only; all I/O happens in activities."""
