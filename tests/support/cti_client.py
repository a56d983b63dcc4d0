"""Run by .venv-cti's Python, not by pytest: posts Generic CTI events with the py-zammad-cti
package's CTIClient, exactly as a PBX using it would, and reports what each answer was.

stdin: {"url": ..., "calls": [["new_call" | "answer" | "hangup", {keyword arguments}], ...]}
stdout, last line: RESULTS <JSON list of {"status": int, "body": any}>
"""

import json
import sys

import requests
from zammad_cti import CTIClient


def main() -> None:
    request = json.load(sys.stdin)
    client = CTIClient(url=request["url"])
    results = []
    for method, arguments in request["calls"]:
        try:
            body = getattr(client, method)(**arguments)
            results.append({"status": 200, "body": body})
        except requests.HTTPError as refused:
            response = refused.response
            try:
                body = response.json()
            except ValueError:
                body = {"not_json": response.text[:500]}
            results.append({"status": response.status_code, "body": body})
    print("RESULTS " + json.dumps(results))


if __name__ == "__main__":
    main()
