"""Fault drills (issue 12): python -m drills [name]. See RELIABILITY.md."""
