"""A telephony system played against a running Rapport, through its public contracts only.

Callers ring the queues with signed `call.*` webhooks, `call.connect` instructions are taken
on a control URL (push) or pulled from `/api/telephony/calls/<id>/`, and bot agents log in
and answer over `/ws/agent/` like a browser. Nothing here imports Rapport: every run proves the
contract (docs/telephony.md and docs/sockets.md) from the outside.

`manage.py simulate` is the command-line front; `run_until_signalled` is the whole run.
"""

from simulator.bots import BotAgent
from simulator.callers import Caller, CallerDirectory
from simulator.config import BotLogin, SecondsRange, SimulationConfig
from simulator.report import Report, Tally
from simulator.simulation import Simulation, run_until_signalled

__all__ = [
    "BotAgent",
    "BotLogin",
    "Caller",
    "CallerDirectory",
    "Report",
    "SecondsRange",
    "Simulation",
    "SimulationConfig",
    "Tally",
    "run_until_signalled",
]
