from django.conf import settings
from django.db import models
from django.db.models.functions import Now


class CallBack(models.Model):
    """Someone on the team called back a caller who hung up before they were answered: who and
    when. One per call, written once and never changed, so the list of abandoned callers says
    truthfully who took each one on. (Seeing the caller's name and number on the wall is the
    access-log row with reason `supervisor`; this row is about the action.)"""

    call = models.OneToOneField("routing.Call", on_delete=models.CASCADE, related_name="call_back")
    called_back_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    username = models.CharField(max_length=150, help_text="Who, as they were called then.")
    called_back_at = models.DateTimeField(db_default=Now())

    class Meta:
        ordering = ["-called_back_at", "-id"]

    def __str__(self) -> str:
        return f"{self.call} called back by {self.username}"
