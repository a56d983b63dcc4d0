"""`manage.py up --pbx`: Rapport and the PBX it starts are configured for each other."""

from pathlib import Path

from development.management.commands.up import PbxLine


def test_rapport_and_the_pbx_share_the_cti_token_the_softphone_secret_and_the_websocket(
    tmp_path: Path,
):
    line = PbxLine(
        sip_port=5070,
        ws_port=8089,
        rtpengine_port=2224,
        route_hint_token="hint-token",
        runtime_dir=tmp_path / "kamailio",
        calls_every_seconds=45,
    )
    rapport = line.settings(tmp_path)

    processes = line.processes(rapport, rapport_url="http://127.0.0.1:8000")

    _, kamailio = processes["kamailio"]
    assert kamailio["TELEPHONY_CTI_TOKEN"] == rapport["TELEPHONY_CTI_TOKEN"]
    assert kamailio["SOFTPHONE_SHARED_SECRET"] == rapport["SOFTPHONE_SHARED_SECRET"]
    assert kamailio["SOFTPHONE_SIP_DOMAIN"] == rapport["SOFTPHONE_SIP_DOMAIN"]
    assert rapport["SOFTPHONE_WEBSOCKET_URL"] == "ws://127.0.0.1:8089"
    assert kamailio["KAMAILIO_WS_LISTEN"] == "tcp:127.0.0.1:8089"
    assert kamailio["RAPPORT_URL"] == "http://127.0.0.1:8000"
    assert kamailio["RAPPORT_ROUTE_HINT_TOKEN"] == "hint-token"
    callers, _ = processes["sip-callers"]
    assert callers[callers.index("--pbx") + 1] == "127.0.0.1:5070"
    # Stable across starts: a softphone's credentials outlive a restart.
    assert line.settings(tmp_path) == rapport
