"""What the deployment test and the capacity bench share: deploy/'s nginx site as shipped, with a
run's own values, and a certificate for it."""

from __future__ import annotations

import subprocess
from pathlib import Path

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"


def nginx_site(replacements: dict[str, str]) -> str:
    """deploy/nginx/rapport.conf with this run's values for the example's: each one is there."""
    text = (DEPLOY / "nginx" / "rapport.conf").read_text()
    for example, value in replacements.items():
        assert example in text, f"{example!r} is not in deploy/nginx/rapport.conf"
        text = text.replace(example, value)
    return text


def self_signed_certificate(directory: Path, *, host: str = "localhost") -> tuple[Path, Path]:
    certificate, key = directory / "rapport.pem", directory / "rapport.key"
    subprocess.run(
        [
            *("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"),
            *("-keyout", str(key), "-out", str(certificate), "-subj", f"/CN={host}"),
            *("-addext", f"subjectAltName=DNS:{host}"),
        ],
        check=True,
        capture_output=True,
    )
    return certificate, key
