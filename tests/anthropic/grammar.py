"""Test helper: parse an Anthropic event stream and check its grammar, block by block."""

from __future__ import annotations

import json

DELTAS = {
    "text": {"text_delta"},
    "thinking": {"thinking_delta", "signature_delta"},
    "tool_use": {"input_json_delta"},
}


def parse_events(raw: bytes) -> list[tuple[str, dict]]:
    """(event name, data) for each frame; every frame must have both lines, and name == data type."""
    events = []
    for frame in raw.decode().split("\n\n"):
        if not frame.strip():
            continue
        lines = frame.split("\n")
        assert len(lines) == 2 and lines[0].startswith("event: ") and lines[1].startswith("data: "), frame
        name, data = lines[0][7:], json.loads(lines[1][6:])
        assert data["type"] == name, frame
        events.append((name, data))
    return events


def check_grammar(events: list[tuple[str, dict]]) -> list[dict]:
    """Assert Anthropic's sequence; return the content blocks the events build."""
    names = [name for name, _ in events if name != "ping"]
    assert names[0] == "message_start" and names.count("message_start") == 1
    assert names[-2:] == ["message_delta", "message_stop"], names[-3:]
    blocks: list[dict] = []
    open_index = None
    for name, data in events:
        if name == "content_block_start":
            assert open_index is None, "a block started before the previous one stopped"
            assert data["index"] == len(blocks), "indices must increase by one from 0"
            open_index = data["index"]
            blocks.append(dict(data["content_block"], _json=""))
        elif name == "content_block_delta":
            assert data["index"] == open_index, "a delta for a block that is not open"
            block, delta = blocks[open_index], data["delta"]
            assert delta["type"] in DELTAS[block["type"]], (block["type"], delta["type"])
            if delta["type"] == "text_delta":
                block["text"] += delta["text"]
            elif delta["type"] == "thinking_delta":
                block["thinking"] += delta["thinking"]
            elif delta["type"] == "signature_delta":
                block["signature"] = delta["signature"]
            else:
                block["_json"] += delta["partial_json"]
        elif name == "content_block_stop":
            assert data["index"] == open_index
            open_index = None
        elif name in ("message_delta", "message_stop"):
            assert open_index is None, f"{name} while block {open_index} is open"
    for block in blocks:
        raw = block.pop("_json")
        if block["type"] == "tool_use":
            block["input"] = json.loads(raw) if raw else {}
    return blocks
