"""Capacity: the calls a second one server holds with the screen-pop's p99 at most 100 ms, for
Rapport in one web process and for Rapport behind nginx in several, on the same machine in one
run.

Two layouts, started in turn on the same embedded PostgreSQL and Redis (emptied and filled before
each: a queue, `--agents` agents with sessions, callers with 1 previous call and callers with
10,000):

- `single`: uvicorn (one process, a pool of 8 connections), one Celery worker (prefork,
  `--worker-processes`) and beat; the agents and the phone system talk to uvicorn directly;
- `nginx`: Debian's nginx running deploy/nginx/rapport.conf (its TLS server listening in plain
  HTTP: the load generator shares the machine's cores, and TLS would be its cost, not Rapport's)
  in front of `--web` uvicorn processes, `--workers` Celery workers (prefork,
  `--worker-processes` each) and one beat; the agents and the phone system talk to nginx.

In each, the agents' sockets sign in and set themselves available, then calls ring at each rate
of `--rates` in turn for `--seconds`, each caller hanging up a second after their offer rang (the
agent is free again). A latency is from a call's 202 to its offer on the agent's socket. A rate
is held when every call was offered and the p99 is at most 100 ms; the layout's capacity is the
highest rate held.

    .venv/bin/python bench/capacity.py [--rates 10,20,30,40] [--seconds 8] [--agents 300]
        [--web 2] [--workers 2] [--worker-processes 2]

Needs Debian's nginx (`scripts/ensure-deploy-servers` installs it).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import servers  # noqa: E402
from bench.events import Signer, hang_up_after_offer, ring  # noqa: E402
from bench.figures import summary  # noqa: E402
from bench.fleet import Agents  # noqa: E402
from development.embedded import free_port  # noqa: E402

STATE = "bench-capacity"
P99_GOAL_MS = 100.0
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"


async def step(client, signer, agents, *, name: str, rate: float, seconds: float) -> dict:
    """`rate` calls/s for `seconds`; each caller hangs up a second after their offer rang."""

    async def after(call_id: str) -> None:
        await hang_up_after_offer(client, signer, agents, call_id, seconds=1.0)

    rings = await ring(client, signer, agents, name=name, rate=rate, seconds=seconds, after=after)
    latencies = [
        (agents.arrived[call_id] - each.answered) * 1000
        for call_id, each in rings.items()
        if call_id in agents.arrived
    ]
    figures = summary(latencies)
    refused = sum(1 for each in rings.values() if each.status != 202)
    held = (
        figures["count"] == len(rings)
        and not refused
        and figures["p99_ms"] is not None
        and figures["p99_ms"] <= P99_GOAL_MS
    )
    return {"rate": rate, "calls": len(rings), "refused": refused, **figures, "held": held}


async def drive(base_url: str, secret: str, sessions: list[str], options, layout: str) -> dict:
    signer = Signer(secret)
    agents = Agents(base_url)
    await agents.sign_in(sessions)
    limits = httpx.Limits(max_connections=64)
    steps = []
    async with httpx.AsyncClient(base_url=base_url, limits=limits, timeout=30) as client:
        await step(client, signer, agents, name=f"{layout}-warmup", rate=5, seconds=2)
        for rate in options.rates:
            result = await step(
                client,
                signer,
                agents,
                name=f"{layout}-{rate:g}",
                rate=rate,
                seconds=options.seconds,
            )
            steps.append(result)
            print(
                f"  {layout:<7}{rate:>6g}/s{result['calls']:>7}{result['count']:>9}"
                f"{result['p50_ms']!s:>9}{result['p99_ms']!s:>9}{result['max_ms']!s:>9}"
                f"{'  held' if result['held'] else '  MISSED'}",
                flush=True,
            )
            await asyncio.sleep(2)
    await agents.close()
    held = [each["rate"] for each in steps if each["held"]]
    return {
        "agents_connected": len(sessions),
        "steps": steps,
        "calls_per_second_held": max(held) if held else 0,
    }


def nginx_conf(directory: Path, *, port: int, web_ports: list[int]) -> Path:
    """deploy/nginx/rapport.conf, as shipped, with this run's ports and paths, inside a main
    configuration of the run's own (nginx runs as this user, its files in `directory`)."""
    from tests.support.deployment import nginx_site, self_signed_certificate

    certificate, key = self_signed_certificate(directory)
    upstream_line = "server 127.0.0.1:{} max_fails=1 fail_timeout=2s;"
    site = nginx_site(
        {
            upstream_line.format(8001): upstream_line.format(web_ports[0]),
            upstream_line.format(8002): "\n    ".join(
                upstream_line.format(each) for each in web_ports[1:]
            ),
            "listen 80;": f"listen 127.0.0.1:{free_port()};",
            "listen [::]:80;": "",
            "listen 443 ssl;": f"listen 127.0.0.1:{port};",
            "listen [::]:443 ssl;": "",
            "listen 127.0.0.1:9180;": f"listen 127.0.0.1:{free_port()};",
            "/etc/letsencrypt/live/rapport.example.com/fullchain.pem": str(certificate),
            "/etc/letsencrypt/live/rapport.example.com/privkey.pem": str(key),
            "/var/log/nginx/": f"{directory}/",
            "/srv/rapport/static/": f"{directory}/static/",
        }
    )
    (directory / "rapport.conf").write_text(site)
    main = directory / "nginx.conf"
    main.write_text(
        f"worker_processes auto;\npid {directory}/nginx.pid;\nerror_log {directory}/error.log;\n"
        "events { worker_connections 4096; }\n"
        f"http {{\n  include /etc/nginx/mime.types;\n  access_log off;\n"
        f"  client_body_temp_path {directory}/body;\n  proxy_temp_path {directory}/proxy;\n"
        f"  include {directory}/rapport.conf;\n}}\n"
    )
    return main


def run_layout(layout: str, env: dict[str, str], sessions, secret: str, options) -> dict:
    state = servers.state_dir(STATE)
    processes: list[subprocess.Popen] = []
    web_ports = [free_port() for _ in range(1 if layout == "single" else options.web)]
    flags = ("--no-access-log", "--log-level", "warning", "--lifespan", "on")
    web_env = {**env, "DB_POOL_MAX_SIZE": "8"}
    if layout == "nginx":
        web_env |= {"NUM_PROXIES": "1", "ALLOWED_HOSTS": "127.0.0.1,localhost"}
    workers = 1 if layout == "single" else options.workers
    try:
        for port in web_ports:
            processes.append(
                servers.start(servers.uvicorn("rapport.asgi:application", port, *flags), web_env)
            )
        for n in range(workers):
            command = servers.celery_worker(processes=options.worker_processes)
            processes.append(servers.start([*command, "-n", f"capacity{n}@%h"], env))
        processes.append(servers.start(servers.celery_beat(state), env))
        for port, process in zip(web_ports, processes, strict=False):
            servers.wait_until_answering(f"http://127.0.0.1:{port}", process)
        if layout == "single":
            base_url = f"http://127.0.0.1:{web_ports[0]}"
        else:
            directory = state / "nginx"
            shutil.rmtree(directory, ignore_errors=True)
            directory.mkdir(parents=True)
            port = free_port()
            conf = nginx_conf(directory, port=port, web_ports=web_ports)
            processes.append(
                servers.start(
                    [NGINX, "-c", str(conf), "-p", str(directory), "-g", "daemon off;"], env
                )
            )
            base_url = f"http://127.0.0.1:{port}"
            servers.wait_until_answering(base_url, processes[-1])
        return asyncio.run(drive(base_url, secret, sessions, options, layout))
    finally:
        servers.stop(processes)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--rates",
        type=lambda text: [float(each) for each in text.split(",")],
        default=[10.0, 20.0, 30.0, 40.0],
        help="calls per second, each rate a step",
    )
    parser.add_argument("--seconds", type=float, default=8, help="length of each step")
    parser.add_argument("--agents", type=int, default=300, help="agents' sockets held open")
    parser.add_argument("--web", type=int, default=2, help="uvicorn processes behind nginx (2+)")
    parser.add_argument("--workers", type=int, default=2, help="Celery workers behind nginx")
    parser.add_argument("--worker-processes", type=int, default=2, help="each worker's pool")
    parser.add_argument("--only", choices=["single", "nginx"], help="one layout only")
    options = parser.parse_args()
    if options.only != "single" and not os.access(NGINX, os.X_OK):
        raise SystemExit(f"no nginx at {NGINX}: run scripts/ensure-deploy-servers")

    secret = servers.new_webhook_secret()
    settings = {"TELEPHONY_WEBHOOK_SECRET": secret, "TELEPHONY_RATE_LIMIT": ""}
    results: dict = {"options": vars(options), "p99_goal_ms": P99_GOAL_MS, "layouts": {}}
    print(
        f"  {'layout':<7}{'rate':>8}{'calls':>7}{'offered':>9}{'p50 ms':>9}{'p99 ms':>9}"
        f"{'max ms':>9}"
    )
    with servers.migrated(STATE, **settings) as (_urls, env):
        for layout in ("single", "nginx"):
            if options.only in (None, layout):
                # Filled afresh: the agents start offline, as sign_in expects.
                sessions = servers.fill(env, "--team", str(options.agents))["sessions"]
                results["layouts"][layout] = run_layout(layout, env, sessions, secret, options)
    results["cpus"] = os.cpu_count()
    results["taken_at"] = datetime.now(tz=UTC).isoformat()
    for layout, figures in results["layouts"].items():
        print(
            f"{layout}: {figures['agents_connected']} agents connected, "
            f"{figures['calls_per_second_held']:g} calls/s held at p99 <= {P99_GOAL_MS:g} ms"
        )
    servers.write_results("capacity", results)


if __name__ == "__main__":
    main()
