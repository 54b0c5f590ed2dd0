"""The password hasher, tuned for this service (README "Passwords")."""

from __future__ import annotations

from django.contrib.auth.hashers import Argon2PasswordHasher


class TunedArgon2PasswordHasher(Argon2PasswordHasher):
    """Argon2id with explicit costs: exactly OWASP's minimum for Argon2id (m=19 MiB, t=2, p=1),
    about 25 ms of one core on this machine when it is quiet. Django's default (100 MiB, p=8) took
    over 150 ms here and PBKDF2's 1,000,000 iterations about 450 ms, each holding a gunicorn
    thread, and with two cores shared by the web workers, PostgreSQL and Redis a login's p50 must
    stay under 150 ms also when the machine is busy: the memory cost is the knob that makes GPU
    guessing dear, and it stays at the floor OWASP recommends rather than above it. One lane: a
    login runs on one gunicorn thread, and more lanes only borrow cores other requests need. The
    algorithm name stays `argon2`, so a hash made with other costs is re-made with these at its
    next login (raise the costs when the hardware allows; old hashes follow by themselves)."""

    memory_cost = 19 * 1024  # KiB
    time_cost = 2
    parallelism = 1
