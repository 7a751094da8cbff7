"""Call the orchestrator's HTTP API from Python: submit a task, follow its events live, print the result.

Start an orchestrator with an agent registered (see README.md in this folder), then:
    python api_client.py http://127.0.0.1:8080 quote '{"product": "pump", "quantity": 120}'
With access control on, pass a token: SCALEOUT_TOKEN=... python api_client.py ...
"""

from __future__ import annotations

import argparse
import json
import os

import anyio

from orchestrator.client import OrchestratorClient, OrchestratorError


async def submit_and_follow(url: str, skill: str, arguments: dict, token: str | None) -> dict:
    """Submit one task needing ``skill``; print each event as it happens; return the finished run's record."""
    async with OrchestratorClient(url, token=token) as client:
        run_id = await client.submit({"skill": skill, "input": arguments})
        print(f"submitted run {run_id}")
        async for event in client.events(run_id):
            print(f"  {event['seq']:>3} {event['kind']}")
        return await client.get_run(run_id)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("url", help="the orchestrator's base URL")
    parser.add_argument("skill", help="the skill the task needs")
    parser.add_argument("input", type=json.loads, help="the skill's input as JSON")
    args = parser.parse_args(argv)
    try:
        record = anyio.run(submit_and_follow, args.url, args.skill, args.input, os.environ.get("SCALEOUT_TOKEN"))
    except OrchestratorError as exc:
        print(f"error: {exc}")
        return 1
    [task] = record["tasks"]
    print(f"{record['status']}: {json.dumps(task['output'] if task['output'] is not None else task['error'])}")
    return 0 if record["status"] == "succeeded" else 1


if __name__ == "__main__":
    raise SystemExit(main())
