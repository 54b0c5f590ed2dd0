"""`python -m bench`: seeds a throw-away PostgreSQL database at scale, sweeps it set-based and row by
row, serves the product and its baselines (a plain DRF peer, a bare WSGI floor) with gunicorn under
wrk, runs pgbench on the same SQL, profiles create with py-spy, and records the ratios in
BENCHMARKS.md (`python -m bench.engine` adds the basic_clean engine's own section)."""
