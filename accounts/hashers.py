"""The password hasher, tuned for this service (README "Passwords")."""

from __future__ import annotations

from django.contrib.auth.hashers import Argon2PasswordHasher


class TunedArgon2PasswordHasher(Argon2PasswordHasher):
    """Argon2id with explicit costs. OWASP's minimum for Argon2id is m=19 MiB, t=2, p=1; this
    takes 32 MiB (memory is what makes GPU guessing expensive) and two passes, about 50 ms of one
    core here, where Django's default (100 MiB, p=8) took over 150 ms on this 2-core machine and
    PBKDF2's 1,000,000 iterations about 460 ms. One lane: a login is one request on one gunicorn
    thread, and more lanes only lend it cores that other requests need. The algorithm name stays
    `argon2`, so a hash made with other costs is re-made with these at its next login."""

    memory_cost = 32 * 1024  # KiB
    time_cost = 2
    parallelism = 1
