from typing import Any

from fastapi.testclient import TestClient

from runwire.tools import registry


def test_list_and_get_tools(client: TestClient, user: dict[str, Any]) -> None:
    tools = client.get("/api/tools").json()["data"]["tools"]
    # Every built-in tool, in the registry's order (its unit test pins the order).
    assert [t["id"] for t in tools] == [each.id for each in registry.builtin_tools()]
    for tool in tools:
        assert tool["source"] == "builtin"
        assert tool["inputSchema"]["type"] == "object"
        if tool["id"] == "llm":  # no model configured here
            assert set(tool) == {"id", "name", "description", "inputSchema", "source", "available", "reason"}
            assert tool["available"] is False and "RUNWIRE_LLM_BASE_URL" in tool["reason"]
        else:
            assert set(tool) == {"id", "name", "description", "inputSchema", "source", "available"}
            assert tool["available"] is True
    delay = client.get("/api/tools/delay").json()["data"]
    assert delay == tools[0]
    assert "seconds" in delay["inputSchema"]["properties"]
    missing = client.get("/api/tools/teleport")
    assert missing.status_code == 404 and missing.json()["error"] == "Not Found"


def test_tools_need_a_session(client: TestClient) -> None:
    assert client.get("/api/tools").status_code == 401
