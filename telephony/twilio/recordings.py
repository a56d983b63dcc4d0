"""Twilio's recordings of callers' messages (docs/telephony.md, "Voicemail"): the status callback
that reports one, its audio fetched for whoever may hear it, and its deletion once its customer
is erased.

The audio is fetched with the account's credentials, which no browser may hold, so Rapport
serves it. A deletion Twilio could not take is kept (the recording's sid, nothing about the
customer) and tried again by beat until Twilio answers 2xx, or 404 (gone already).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

import requests
from django.conf import settings

from infrastructure import dispatch
from routing import voicemails
from routing.models import Voicemail
from routing.voicemails import Recording
from telephony.models import RecordingDeletion

logger = logging.getLogger(__name__)

DELETE_RECORDINGS = "telephony.delete_twilio_recordings"
# Audio Rapport passes on: WAV, as Twilio stores it.
AUDIO_CONTENT_TYPE = "audio/x-wav"
_CHUNK_BYTES = 64 * 1024


def recording_completed(
    *, call_sid: str, sid: str, url: str, duration_seconds: int, status: str
) -> Voicemail | None:
    """The `<Record>`'s status callback: a completed message with some length is kept and
    offered as a call back; an empty, absent or failed one is nothing to call back about.
    Raises Call.DoesNotExist for a CallSid Rapport does not know."""
    if status != "completed" or duration_seconds <= 0:
        logger.info(
            "twilio call %r: recording %s %s, %d s: no message",
            call_sid,
            sid,
            status,
            duration_seconds,
        )
        return None
    return voicemails.message_left(
        telephony_call_id=call_sid,
        recording=Recording(sid=sid, url=url, duration_seconds=duration_seconds),
        agent_dials=False,
    )


def _api_url(path: str) -> str:
    return settings.TWILIO_API_BASE_URL.rstrip("/") + path


def _auth() -> tuple[str, str]:
    return (settings.TWILIO_ACCOUNT_SID, settings.TWILIO_AUTH_TOKEN)


def recording_path(recording_sid: str, account_sid: str, suffix: str) -> str:
    return f"/2010-04-01/Accounts/{account_sid}/Recordings/{recording_sid}{suffix}"


class AudioUnavailable(Exception):
    """Twilio did not give the audio (unreachable, refused, gone)."""


def audio_chunks(voicemail: Voicemail) -> tuple[Iterator[bytes], str]:
    """The message's audio from Twilio's REST API, as chunks to stream, and its content type."""
    url = _api_url(recording_path(voicemail.recording_sid, settings.TWILIO_ACCOUNT_SID, ".wav"))
    try:
        response = requests.get(
            url, auth=_auth(), stream=True, timeout=settings.TWILIO_API_TIMEOUT_SECONDS
        )
    except requests.RequestException as failed:
        raise AudioUnavailable(f"{type(failed).__name__}: {failed}") from failed
    if response.status_code != 200:
        response.close()
        raise AudioUnavailable(f"Twilio answered {response.status_code}")

    def chunks() -> Iterator[bytes]:
        with response:
            yield from response.iter_content(_CHUNK_BYTES)

    return chunks(), response.headers.get("content-type", AUDIO_CONTENT_TYPE)


def delete_recordings(recording_sids: list[str]) -> None:
    """The recordings of an erased customer are to go at Twilio: kept to delete (their sids
    only) and deleted once the erasure is committed, by a task, then by beat until done."""
    if not recording_sids:
        return
    RecordingDeletion.objects.bulk_create(
        [
            RecordingDeletion(account_sid=settings.TWILIO_ACCOUNT_SID, recording_sid=sid)
            for sid in recording_sids
        ],
        ignore_conflicts=True,
    )
    dispatch.publish_on_commit(DELETE_RECORDINGS)


def any_deletion_pending(*, now=None) -> bool:
    return RecordingDeletion.objects.exists()


def delete_pending_recordings() -> int:
    """DELETE each recording still to delete at Twilio; done (2xx, or 404: gone already) is
    forgotten, anything else is kept for the next round. Returns how many are left."""
    left = 0
    for deletion in list(RecordingDeletion.objects.order_by("id")[:200]):
        url = _api_url(recording_path(deletion.recording_sid, deletion.account_sid, ".json"))
        try:
            response = requests.delete(
                url, auth=_auth(), timeout=settings.TWILIO_API_TIMEOUT_SECONDS
            )
            status_code, error = response.status_code, f"Twilio answered {response.status_code}"
        except requests.RequestException as failed:
            status_code, error = None, f"{type(failed).__name__}: {failed}"
        if status_code is not None and (200 <= status_code < 300 or status_code == 404):
            RecordingDeletion.objects.filter(pk=deletion.pk).delete()
            logger.info("twilio recording %s deleted", deletion.recording_sid)
            continue
        left += 1
        RecordingDeletion.objects.filter(pk=deletion.pk).update(
            attempts=deletion.attempts + 1, last_error=error[:300]
        )
        logger.warning(
            "twilio recording %s not deleted (%s); tried again later",
            deletion.recording_sid,
            error,
        )
    return left
