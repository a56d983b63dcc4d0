"""Production's settings, with the bench's URLs: Rapport's, and the trivial view beside them."""

from rapport.settings import *  # noqa: F403

ROOT_URLCONF = "bench.urls"
