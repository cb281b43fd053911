"""The hand-shaped JSON of the run routes (listing.py, for speed) is exactly what the response models describe:
each answer validates against its model and comes back from it unchanged, field for field."""

from typing import Any

from fastapi.testclient import TestClient
from pydantic import BaseModel

from runwire.runs.schemas import RunDetail, RunList, RunRead
from runwire.schemas import Envelope
from tests.helpers import create_workflow, new_chat, start_run, step, wait_for_first_step, wait_for_run


def assert_round_trip(model: type[BaseModel], body: dict[str, Any]) -> None:
    parsed = model.model_validate(body)
    assert parsed.model_dump(mode="json", by_alias=True, exclude_unset=True) == body


def test_every_run_route_answers_exactly_its_model(client: TestClient, user: dict[str, Any]) -> None:
    chat = new_chat(client)
    base = f"/api/chats/{chat['id']}/workflow-runs"
    ok = create_workflow(
        client,
        [step("a", "template", {"template": "hi"}, name="A"), step("b", "delay", {"seconds": 0}, dependsOn=["a"])],
    )
    broken = create_workflow(client, [step("a", "template", {"template": "{{ input.missing }}"})])
    slow = create_workflow(client, [step("wait", "delay", {"seconds": 30})])

    completed = start_run(client, chat["id"], ok["id"], {"n": 1})
    wait_for_run(client, chat["id"], completed["id"])
    failed = start_run(client, chat["id"], broken["id"])
    wait_for_run(client, chat["id"], failed["id"])
    running = start_run(client, chat["id"], slow["id"])
    wait_for_first_step(client, chat["id"], running["id"])
    pending = client.post(base, json={"workflowId": ok["id"]})
    assert pending.status_code == 202
    assert_round_trip(Envelope[RunRead], pending.json())

    listed = client.get(base).json()
    assert [run["status"] for run in listed["data"]["workflowRuns"]] == ["completed", "failed", "running", "pending"]
    assert_round_trip(Envelope[RunList], listed)
    assert_round_trip(Envelope[RunList], client.get(base, params={"limit": 2, "order": "desc"}).json())
    for run in listed["data"]["workflowRuns"]:
        assert_round_trip(Envelope[RunDetail], client.get(f"{base}/{run['id']}").json())

    cancelled = client.post(f"{base}/{pending.json()['data']['id']}/cancel")
    assert cancelled.status_code == 202
    assert_round_trip(Envelope[RunRead], cancelled.json())
    client.post(f"{base}/{running['id']}/cancel")
