"""Benchmarks: Rapport started as production runs it, measured from another process.

See bench/README.md. The scripts are run as `.venv/bin/python bench/<script>.py`; the servers
they start import `bench.settings` (and through it `bench.urls`) from the checkout's root.
"""

# The trivial Django view the webhook is measured against: no database, no auth, the same
# middleware (`bench/urls.py` serves it; production's URLs do not have it).
PING_PATH = "/api/telephony/ping/"
