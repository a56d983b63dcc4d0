"""Benchmarks: Rapport started as production runs it, measured from another process.

See bench/README.md. The scripts are run as `.venv/bin/python bench/<script>.py`.
"""

# The trivial Django view the webhook is measured against: no database, no auth, the same
# middleware (`telephony.api.ping`).
PING_PATH = "/api/telephony/ping/"
