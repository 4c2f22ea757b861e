"""Faults, limits, retries, SIGKILL resume, bad input and secrets."""
