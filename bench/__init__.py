"""`python -m bench`: seeds a throw-away PostgreSQL database, serves the app with gunicorn, measures
the hot endpoints, the hot query plans and the sweep, and records the numbers in BENCHMARKS.md."""
