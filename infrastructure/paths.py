import os
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
# Embedded databases, Redis, secrets and schedules of a checkout live here (git-ignored).
RUNTIME_DIR = Path(os.environ.get("RAPPORT_DATA_DIR", BASE_DIR / ".rapport")).resolve()
