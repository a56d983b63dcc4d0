#!/usr/bin/env python
import os
import sys


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "rapport.settings")
    from django.core.management import execute_from_command_line

    try:
        execute_from_command_line(sys.argv)
    except Exception as error:
        # No database or Redis to talk to is a setup question, not a bug: one line, no traceback.
        from django.conf import settings

        from development.running_services import unreachable_service_message

        message = unreachable_service_message(error, getattr(settings, "SERVICE_URL_SOURCES", {}))
        if message is None:
            raise
        sys.stderr.write(message + "\n")
        sys.exit(1)


if __name__ == "__main__":
    main()
