"""Rapport's own PBX on this machine: Debian's Kamailio running deploy/kamailio/kamailio.cfg as
shipped, rtpengine beside it, and baresip callers dialling a queue. One home for how they are
started, used by `manage.py up --pbx` (a phone line with real SIP and RTP for the demo) and by
the system tests (tests/support/sip.py).

`python -m development.pbx callers --pbx 127.0.0.1:5060 --number +18005550100 --every 40`
is the simulated callers' process: one baresip caller at a time from a demo customer's number,
each talking for `--talk` seconds (or until an agent hangs up).
"""

from __future__ import annotations

import argparse
import itertools
import os
import random
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
KAMAILIO_CFG = REPO / "deploy" / "kamailio" / "kamailio.cfg"
KAMAILIO = "/usr/sbin/kamailio"
RTPENGINE = "/usr/bin/rtpengine"
BARESIP = "/usr/bin/baresip"
ENSURE_SIP = REPO / "scripts" / "ensure-sip"
KAMAILIO_MODULES = ("http_client", "websocket", "auth_ephemeral", "crypto", "jansson")
# Agents register in this domain on this machine (SOFTPHONE_SIP_DOMAIN).
DOMAIN = "127.0.0.1"


def missing_tools() -> list[str]:
    missing = [path for path in (KAMAILIO, RTPENGINE, BARESIP) if not os.access(path, os.X_OK)]
    modules = next(Path("/usr/lib").glob("*/kamailio/modules"), None)
    for module in KAMAILIO_MODULES:
        if modules is None or not (modules / f"{module}.so").exists():
            missing.append(f"kamailio module {module}")
    return missing


def kamailio_environment(
    *,
    rapport_url: str,
    route_hint_token: str,
    cti_token: str,
    shared_secret: str,
    sip_port: int,
    ws_port: int,
    rtpengine_port: int,
    hint_timeout_seconds: int = 1,
) -> dict[str, str]:
    """What deploy/kamailio/kamailio.cfg reads from its environment (its header lists them)."""
    return {
        "RAPPORT_URL": rapport_url,
        "RAPPORT_ROUTE_HINT_TOKEN": route_hint_token,
        "TELEPHONY_CTI_TOKEN": cti_token,
        "SOFTPHONE_SHARED_SECRET": shared_secret,
        "SOFTPHONE_SIP_DOMAIN": DOMAIN,
        "KAMAILIO_SIP_LISTEN": f"udp:127.0.0.1:{sip_port}",
        "KAMAILIO_SIP_TCP_LISTEN": f"tcp:127.0.0.1:{sip_port}",
        "KAMAILIO_WS_LISTEN": f"tcp:127.0.0.1:{ws_port}",
        "KAMAILIO_RTPENGINE": f"udp:127.0.0.1:{rtpengine_port}",
        "KAMAILIO_HINT_TIMEOUT": str(hint_timeout_seconds),
    }


def kamailio_command(runtime_dir: Path, cfg: Path = KAMAILIO_CFG) -> list[str]:
    """Kamailio in the foreground, logging to stderr, its runtime files in `runtime_dir`."""
    return [KAMAILIO, "-f", str(cfg), "-DD", "-E", "-Y", str(runtime_dir), "-m", "64", "-M", "8"]


def rtpengine_command(control_port: int, *, ports: tuple[int, int] = (30000, 30999)) -> list[str]:
    """rtpengine in userspace (no kernel module), its ng control protocol on `control_port`."""
    return [
        RTPENGINE,
        "--config-file=none",
        "--table=-1",
        "--interface=127.0.0.1",
        f"--listen-ng=127.0.0.1:{control_port}",
        f"--port-min={ports[0]}",
        f"--port-max={ports[1]}",
        "--foreground",
        "--log-stderr",
        "--no-fallback",
        "--delete-delay=0",
    ]


BARESIP_CONFIG = """\
poll_method epoll
sip_listen 127.0.0.1:{sip_port}
net_interface 127.0.0.1
call_local_timeout 120
call_max_calls 4
audio_source ausine,{tone_hz}
audio_player aubridge,nowhere
audio_alert aubridge,nowhere
ausrc_srate 48000
ausrc_channels 2
auplay_srate 48000
auplay_channels 2
audio_buffer 20-160
rtp_ports {rtp_low}-{rtp_high}
rtcp_mux no
jitter_buffer_delay 5-10
module_path /usr/lib/baresip/modules
module g711.so
module ausine.so
module aubridge.so
module sndfile.so
module_tmp uuid.so
module_tmp account.so
module_app menu.so
module_app ctrl_tcp.so
ctrl_tcp_listen 127.0.0.1:{control_port}
snd_path {recordings}
"""


def baresip_home(
    home: Path, account: str, *, first_port: int, tone_hz: int
) -> tuple[Path, int, int]:
    """A baresip configuration folder for one account: its SIP port (and port+1), control port
    and 40 RTP ports from `first_port` up (44 in all). A sine tone is its microphone (ausine
    gives 48 kHz stereo only); what it hears is written to recordings/ (sndfile's `-dec` WAVs).
    Returns the folder, its SIP port and its control port."""
    home.mkdir(parents=True, exist_ok=True)
    (home / "recordings").mkdir(exist_ok=True)
    sip_port, control_port, rtp_low = first_port, first_port + 2, first_port + 4
    (home / "accounts").write_text(account + "\n")
    (home / "config").write_text(
        BARESIP_CONFIG.format(
            sip_port=sip_port,
            control_port=control_port,
            tone_hz=tone_hz,
            recordings=home / "recordings",
            rtp_low=rtp_low,
            rtp_high=rtp_low + 39,
        )
    )
    return home, sip_port, control_port


PORTS_PER_BARESIP = 44


def caller_account(number: str, pbx_address: str) -> str:
    """A caller from the phone network: registers nowhere, sends its calls to the PBX."""
    return f'<sip:{number}@caller.invalid>;outbound="sip:{pbx_address}";regint=0;audio_codecs=pcmu'


def stable_secret(state_dir: Path, name: str) -> str:
    """A secret kept in `state_dir`, the same at every start (a softphone stays registered)."""
    secret_file = state_dir / name
    if not secret_file.exists():
        state_dir.mkdir(parents=True, exist_ok=True)
        secret_file.write_text(secrets.token_urlsafe(32))
        secret_file.chmod(0o600)
    return secret_file.read_text().strip()


def ensure_route_hint_token() -> str:
    """The token the PBX asks the route hint with: user `pbx`, allowed to view calls (run with
    Django set up, e.g. `manage.py shell -c`)."""
    from django.contrib.auth.models import Permission, User
    from rest_framework.authtoken.models import Token

    user, _ = User.objects.get_or_create(username="pbx")
    user.user_permissions.add(Permission.objects.get(codename="view_call"))
    token, _ = Token.objects.get_or_create(user=user)
    return token.key


def ensure_sip_packages() -> list[str]:
    """Installs the SIP packages where this machine allows (scripts/ensure-sip); what is still
    missing."""
    if missing_tools():
        subprocess.run([str(ENSURE_SIP)], check=False)
    return missing_tools()


# --- the simulated callers' process ---------------------------------------------------------------


def run_callers(
    *, pbx_address: str, number: str, callers: list[str], every: float, talk: float, seed: int
) -> None:
    """Forever: a baresip caller from one of `callers` dials `number` at `pbx_address` about
    every `every` seconds and stays on the line up to `talk` seconds."""
    rng = random.Random(seed)
    workdir = Path(tempfile.mkdtemp(prefix="rapport-sip-callers-"))
    ports = itertools.cycle(range(24000, 24000 + 10 * PORTS_PER_BARESIP, PORTS_PER_BARESIP))
    running: list[subprocess.Popen] = []
    try:
        for count in itertools.count(1):
            caller = rng.choice(callers)
            home, _, _ = baresip_home(
                workdir / f"call-{count % 10}",
                caller_account(caller, pbx_address),
                first_port=next(ports),
                tone_hz=rng.choice((330, 440, 550, 660)),
            )
            print(f"caller {caller} dials {number}", flush=True)
            running.append(
                subprocess.Popen(
                    [BARESIP, "-f", str(home), "-e", f"/dial sip:{number}@{pbx_address}"]
                    + ["-t", str(int(talk))],
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            )
            running = [process for process in running if process.poll() is None]
            time.sleep(rng.uniform(0.5, 1.5) * every)
    finally:
        for process in running:
            process.terminate()
        shutil.rmtree(workdir, ignore_errors=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m development.pbx")
    commands = parser.add_subparsers(dest="command", required=True)
    callers = commands.add_parser("callers", help="simulated callers dialling a queue")
    callers.add_argument("--pbx", required=True, help="Kamailio's SIP address, host:port")
    callers.add_argument("--number", default="+18005550100", help="the queue number to dial")
    callers.add_argument("--from", dest="callers", default="+14155550200,+14155550201,+14155550202")
    callers.add_argument("--every", type=float, default=45.0, help="seconds between calls")
    callers.add_argument("--talk", type=float, default=40.0, help="longest call, seconds")
    callers.add_argument("--seed", type=int, default=7)
    arguments = parser.parse_args(argv)
    run_callers(
        pbx_address=arguments.pbx,
        number=arguments.number,
        callers=[number.strip() for number in arguments.callers.split(",") if number.strip()],
        every=arguments.every,
        talk=arguments.talk,
        seed=arguments.seed,
    )


if __name__ == "__main__":
    main(sys.argv[1:])
