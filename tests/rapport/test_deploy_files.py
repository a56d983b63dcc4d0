"""What the files in deploy/ must agree on, checked where Debian's servers are not installed too
(tests/system/test_deployment.py runs them)."""

import re
from pathlib import Path

from django.conf import settings

DEPLOY = Path(settings.BASE_DIR) / "deploy"


def environment_example() -> dict[str, str]:
    lines = (DEPLOY / "rapport.env.example").read_text().splitlines()
    return dict(
        line.partition("=")[::2] for line in lines if line.strip() and not line.startswith("#")
    )


def test_every_variable_a_unit_expands_is_in_the_environment_file():
    example = environment_example()
    for unit in (DEPLOY / "systemd").glob("*.service"):
        expanded = set(re.findall(r"\$\{(\w+)\}", unit.read_text()))
        assert expanded <= set(example), (unit.name, expanded - set(example))


def test_nginx_refuses_the_bodies_rapport_would_refuse():
    site = (DEPLOY / "nginx" / "rapport.conf").read_text()
    (size,) = re.findall(r"client_max_body_size (\d+)m;", site)
    limit = int(environment_example()["MAX_REQUEST_BODY_BYTES"])
    assert int(size) * 1024 * 1024 == limit == settings.MAX_REQUEST_BODY_BYTES
