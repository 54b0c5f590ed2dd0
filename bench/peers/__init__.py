"""The baselines of the create benchmark, served by gunicorn like the product: a plain DRF +
simplejwt function view (drf_settings.py, drf_app.py) and a bare WSGI app on psycopg and PyJWT
(floor.py). Both run the create transaction of the product (lock the member, deduct, insert the
task, insert the ledger row) with the statements bench/sqlgen.py builds from the models."""
