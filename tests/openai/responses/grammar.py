"""Test helper: parse a Responses API event stream and check it against the order OpenAI sends."""

from __future__ import annotations

import json

TERMINAL = ("response.completed", "response.incomplete", "response.failed")
# Per item type: the sub-events that may come between output_item.added and .done, in order.
SUB_EVENTS = {
    "message": (
        "response.content_part.added",
        "response.output_text.delta",
        "response.output_text.done",
        "response.content_part.done",
    ),
    "reasoning": (
        "response.reasoning_summary_part.added",
        "response.reasoning_summary_text.delta",
        "response.reasoning_summary_text.done",
        "response.reasoning_summary_part.done",
    ),
    "function_call": ("response.function_call_arguments.delta", "response.function_call_arguments.done"),
    "custom_tool_call": ("response.custom_tool_call_input.delta", "response.custom_tool_call_input.done"),
}
_DONE_FIELD = {
    "response.output_text.done": "text",
    "response.reasoning_summary_text.done": "text",
    "response.function_call_arguments.done": "arguments",
    "response.custom_tool_call_input.done": "input",
}


def parse_events(raw: bytes) -> list[dict]:
    """Each frame's data; every frame has `event:` and `data:` lines that agree. Comments (heartbeats)
    are skipped; a chat-style bare `data:` frame fails here."""
    events = []
    for frame in raw.decode().split("\n\n"):
        lines = [line for line in frame.split("\n") if line and not line.startswith(":")]
        if not lines:
            continue
        assert len(lines) == 2 and lines[0].startswith("event: ") and lines[1].startswith("data: "), frame
        data = json.loads(lines[1][6:])
        assert data["type"] == lines[0][7:], frame
        events.append(data)
    return events


def check_stream(events: list[dict]) -> dict:
    """Assert the order; return the terminal event's response."""
    types = [e["type"] for e in events]
    assert types[:2] == ["response.created", "response.in_progress"], types[:3]
    assert [e["sequence_number"] for e in events] == list(range(len(events)))
    assert types[-1] in TERMINAL and sum(t in TERMINAL for t in types) == 1, types[-3:]
    response_id = events[0]["response"]["id"]
    assert all(e["response"]["id"] == response_id for e in events if "response" in e)
    done_items: list[dict] = []
    item = None
    stage = -1  # how far into its item type's sub-events the open item is
    deltas = ""
    for event in events[2:-1]:
        kind = event["type"]
        if kind == "response.output_item.added":
            assert item is None, "an item was added before the previous one was done"
            assert event["output_index"] == len(done_items)
            item, stage, deltas = event["item"], -1, ""
            continue
        assert item is not None, f"{kind} outside an item"
        if kind == "response.output_item.done":
            assert event["output_index"] == len(done_items) and event["item"]["id"] == item["id"]
            assert event["item"]["type"] == item["type"]
            done_items.append(event["item"])
            item = None
            continue
        order = SUB_EVENTS[item["type"]]
        assert kind in order, f"{kind} inside a {item['type']} item"
        position = order.index(kind)
        repeatable = kind.endswith(".delta")
        assert position > stage or (position == stage and repeatable), (kind, stage)
        stage = position
        assert event["item_id"] == item["id"] and event["output_index"] == len(done_items)
        if repeatable:
            deltas += event["delta"]
        elif kind in _DONE_FIELD:
            assert event[_DONE_FIELD[kind]] == deltas, kind
            deltas = ""
    assert item is None or types[-1] == "response.failed", "the stream ended inside an item"
    final = events[-1]["response"]
    if types[-1] != "response.failed":
        assert [i["id"] for i in final["output"]] == [i["id"] for i in done_items]
        assert final["output"] == done_items
    return final
