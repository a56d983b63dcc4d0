import phonenumbers
from django.conf import settings


def normalise_phone_number(raw: str, region: str | None = None) -> str | None:
    """E.164 for anything that parses as a possible number; None when it does not."""
    try:
        parsed = phonenumbers.parse(raw, region or settings.PHONE_DEFAULT_REGION)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_possible_number(parsed):
        return None
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
