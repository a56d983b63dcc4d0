"""Reading the simulator's report: what `Tally.report().lines()` and `manage.py simulate
--report` print, as figures by name."""

import re


def report_figures(text: str) -> dict[str, int]:
    return {
        name.strip(): int(value)
        for name, value in re.findall(r"^([^:\n]+):\s+(\d+)", text, flags=re.MULTILINE)
    }
