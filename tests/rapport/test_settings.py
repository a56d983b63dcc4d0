import json
import os
import subprocess
import sys

from django.conf import settings

PRINT_SETTINGS = """
import json
from django.conf import settings as s
db = s.DATABASES["default"]
print(json.dumps({
    "debug": s.DEBUG, "secret": s.SECRET_KEY, "hosts": s.ALLOWED_HOSTS,
    "db": [db["HOST"], db["PORT"], db["NAME"], db["USER"]], "redis": s.REDIS_URL,
    "broker": s.CELERY_BROKER_URL, "layer": s.CHANNEL_LAYERS["default"]["CONFIG"]["hosts"],
    "secrets": s.TELEPHONY_WEBHOOK_SECRET, "control": s.TELEPHONY_CONTROL_URL,
}))
"""


def _settings_under(env: dict) -> dict:
    completed = subprocess.run(
        [sys.executable, "-c", "import django; django.setup();" + PRINT_SETTINGS],
        cwd=settings.BASE_DIR,
        env={"PATH": os.environ["PATH"], "DJANGO_SETTINGS_MODULE": "rapport.settings", **env},
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(completed.stdout)


def test_settings_come_from_the_environment():
    values = _settings_under(
        {
            "DEBUG": "1",
            "SECRET_KEY": "from-env",
            "ALLOWED_HOSTS": "rapport.example.com,console.example.com",
            "DATABASE_URL": "postgres://ops:pw@db.internal:6543/rapport_prod",
            "REDIS_URL": "redis://cache.internal:6380/2",
            "TELEPHONY_WEBHOOK_SECRET": "whsec_bmV3,whsec_b2xk",
            "TELEPHONY_CONTROL_URL": "https://pbx.example.com/control",
        }
    )
    assert values["debug"] is True
    assert values["secret"] == "from-env"
    assert values["hosts"] == ["rapport.example.com", "console.example.com"]
    assert values["db"] == ["db.internal", 6543, "rapport_prod", "ops"]
    assert values["redis"] == values["broker"] == "redis://cache.internal:6380/2"
    assert [host["address"] for host in values["layer"]] == ["redis://cache.internal:6380/2"]
    assert values["secrets"] == ["whsec_bmV3", "whsec_b2xk"], "rotation: several secrets"
    assert values["control"] == "https://pbx.example.com/control"


def test_loading_settings_starts_no_server(tmp_path):
    _settings_under({"RAPPORT_DATA_DIR": str(tmp_path)})
    assert list(tmp_path.iterdir()) == []
