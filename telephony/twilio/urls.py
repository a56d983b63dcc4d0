from django.urls import path

from telephony.twilio import api

urlpatterns = [
    path("voice/", api.voice, name="twilio-voice"),
    path("status/", api.status, name="twilio-status"),
    path("wait/", api.wait, name="twilio-wait"),
    path("choice/", api.choice, name="twilio-choice"),
    path("enqueue-action/", api.enqueue_action, name="twilio-enqueue-action"),
    path("dial-action/", api.dial_action, name="twilio-dial-action"),
    path("agent-status/", api.agent_status, name="twilio-agent-status"),
    path("recorded/", api.recorded, name="twilio-recorded"),
    path("recording/", api.recording, name="twilio-recording"),
]
