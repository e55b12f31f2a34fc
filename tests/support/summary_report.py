"""REPORT: lines a test appends to be printed in pytest's terminal summary (tests/conftest.py)."""
REPORT: list[str] = []
