import uuid
from typing import Any

from fastapi.testclient import TestClient

from tests.helpers import create_workflow, new_chat, sign_up, step


def problems(client: TestClient, steps: list[dict[str, Any]]) -> list[dict[str, str]]:
    response = client.post("/api/workflows", json={"name": "bad", "steps": steps})
    assert response.status_code == 400, response.text
    assert response.json()["error"] == "Bad Request"
    details: list[dict[str, str]] = response.json()["details"]
    return details


def test_create_get_patch_versions_and_delete(client: TestClient, user: dict[str, Any]) -> None:
    steps = [step("a", "delay", {"seconds": 0})]
    workflow = create_workflow(client, steps, name="first")
    assert workflow["version"] == 1 and workflow["userId"] == user["id"]
    assert workflow["steps"] == [{"id": "a", "toolId": "delay", "inputs": {"seconds": 0}, "dependsOn": []}]
    path = f"/api/workflows/{workflow['id']}"
    assert client.get(path).json()["data"] == workflow
    renamed = client.patch(path, json={"name": "renamed"}).json()["data"]
    assert renamed["name"] == "renamed" and renamed["version"] == 1
    changed = client.patch(path, json={"steps": [step("b", "delay", {"seconds": 1})]}).json()["data"]
    assert changed["version"] == 2 and changed["steps"][0]["id"] == "b"
    assert client.patch(path, json={}).status_code == 400
    listed = client.get(f"/api/users/{user['id']}/workflows").json()["data"]
    assert [w["id"] for w in listed["workflows"]] == [workflow["id"]] and listed["nextCursor"] is None
    assert client.delete(path).status_code == 204
    assert client.get(path).status_code == 404
    assert client.get(f"/api/users/{user['id']}/workflows").json()["data"]["workflows"] == []


def test_user_id_must_be_the_caller(client: TestClient, user: dict[str, Any]) -> None:
    response = client.post("/api/workflows", json={"name": "x", "userId": str(uuid.uuid4())})
    assert response.status_code == 403
    ok = client.post("/api/workflows", json={"name": "x", "userId": user["id"]})
    assert ok.status_code == 201


def test_each_validation_rule_names_its_step_and_field(client: TestClient, user: dict[str, Any]) -> None:
    repeated = problems(client, [step("a", "delay", {"seconds": 1}), step("a", "delay", {"seconds": 1})])
    assert {"field": "steps[1].id", "message": "step id 'a' is used more than once"} in repeated
    unknown_tool = problems(client, [step("a", "teleport", {})])
    assert unknown_tool == [{"field": "steps[0].toolId", "message": "unknown tool 'teleport'"}]
    missing_dep = problems(client, [step("a", "delay", {"seconds": 1}, dependsOn=["ghost"])])
    assert missing_dep[0]["field"] == "steps[0].dependsOn" and "ghost" in missing_dep[0]["message"]
    cycle = problems(
        client,
        [step("a", "delay", {"seconds": 1}, dependsOn=["b"]), step("b", "delay", {"seconds": 1}, dependsOn=["a"])],
    )
    assert {d["field"] for d in cycle} == {"steps[0].dependsOn", "steps[1].dependsOn"}
    assert all("cycle" in d["message"] for d in cycle)
    not_upstream = problems(
        client,
        [
            step("a", "template", {"template": "{{ steps.b.output.text }}"}),
            step("b", "template", {"template": "x"}),
        ],
    )
    assert not_upstream == [{"field": "steps[0].inputs.template", "message": "step 'b' is not upstream of step 'a'"}]
    bad_literal = problems(client, [step("a", "delay", {"seconds": "soon"})])
    assert bad_literal[0]["field"].startswith("steps[0].inputs.seconds")
    too_many = problems(client, [step(f"s{i}", "delay", {"seconds": 0}) for i in range(101)])
    assert too_many[0]["field"] == "steps"
    bad_id = client.post("/api/workflows", json={"name": "x", "steps": [step("has space", "delay", {"seconds": 0})]})
    assert bad_id.status_code == 400 and bad_id.json()["details"][0]["field"].startswith("steps.0.id")
    assert client.get(f"/api/users/{user['id']}/workflows").json()["data"]["workflows"] == []


def test_templated_inputs_are_checked_when_the_step_runs_not_before(client: TestClient, user: dict[str, Any]) -> None:
    workflow = create_workflow(client, [step("a", "delay", {"seconds": "{{ input.wait }}"})])
    assert workflow["steps"][0]["inputs"] == {"seconds": "{{ input.wait }}"}


def test_another_users_workflow(client: TestClient) -> None:
    sign_up(client, "owner@example.com")
    workflow = create_workflow(client, [step("a", "delay", {"seconds": 0})])
    client.cookies.clear()
    sign_up(client, "other@example.com")
    chat = new_chat(client)
    assert client.get(f"/api/workflows/{workflow['id']}").status_code == 403
    assert client.patch(f"/api/workflows/{workflow['id']}", json={"name": "mine"}).status_code == 403
    run = client.post(f"/api/chats/{chat['id']}/workflow-runs", json={"workflowId": workflow["id"]})
    assert run.status_code == 403
    assert client.get(f"/api/chats/{chat['id']}/workflow-runs").json() == {"data": {"workflowRuns": []}}
