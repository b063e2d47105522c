"""Gemini answers, whole or streamed, as Responses API output items, status and usage.

One builder reads Gemini's parts in order for both: a whole answer is fed once, a stream event by
event, and a stream's sink turns each change into OpenAI's events as it happens.
"""

from __future__ import annotations

import time
from typing import Protocol

from ... import jsonx
from ...translate import parts as gemini_parts
from ...translate.finish import Outcome, block_reason, outcome
from ...translate.grounding import citations
from ...translate.parts import Kind, MarkdownText
from ...translate.usage import token_counts
from .. import tool_ids
from ..from_gemini import logprobs as chat_logprobs
from .ids import ItemIds, encrypted_signature
from .to_gemini import ToolNames

ENCRYPTED_REASONING = "reasoning.encrypted_content"
_CUSTOM_INPUT = "input"
_CALL_EVENTS = {
    "function_call": "response.function_call_arguments",
    "custom_tool_call": "response.custom_tool_call_input",
}


def usage(meta: dict | None) -> dict:
    """Responses usage from Gemini's usageMetadata: thoughts are output (reasoning) tokens."""
    counts = token_counts(meta)
    return {
        "input_tokens": counts.input,
        "input_tokens_details": {"cached_tokens": counts.cached, "cache_write_tokens": 0},
        "output_tokens": counts.output,
        "output_tokens_details": {"reasoning_tokens": counts.thoughts},
        "total_tokens": counts.total,
    }


class Sink(Protocol):
    """Where the builder's changes go: a stream writes each as an event; a whole answer needs none."""

    def event(self, kind: str, fields: dict) -> None: ...


class _Quiet:
    def event(self, kind: str, fields: dict) -> None:
        pass


QUIET = _Quiet()


class OutputBuilder:
    """Gemini parts into output items, one item open at a time: thoughts into a reasoning item,
    text (and code, results and media as Markdown) into a message, each call into a function_call
    or custom_tool_call item.

    Thought signatures ride back to Gemini in a call's `call_id` or in a reasoning item's
    `encrypted_content`; a signature neither carries when the answer ends (Gemini 3 sends one after
    the text) gets a reasoning item of its own, so a client that replays the output replays it.
    """

    def __init__(
        self, ids: ItemIds, names: ToolNames, *, sink: Sink = QUIET, parallel_tool_calls: bool = True
    ):
        self.ids = ids
        self.names = names
        self.sink = sink
        self.parallel_tool_calls = parallel_tool_calls
        self.items: list[dict] = []
        self.usage: dict | None = None  # the latest usageMetadata, for accounting
        self.finish_reason: str | None = None
        self.blocked: str | None = None
        self.calls = 0
        self._open: dict | None = None  # the reasoning or message item being written
        self._reasoning_signature: str | None = None
        self._text = MarkdownText()
        self._signatures: list[str] = []  # every signature seen, in order
        self._carried: set[str] = set()
        self._candidate: dict = {}  # the latest candidate with grounding, for the message's citations
        self._logprobs: list[dict] = []  # the latest response's token logprobs, for its text

    # -- reading Gemini -------------------------------------------------------------------------
    def feed(self, answer: dict) -> None:
        meta = answer.get("usageMetadata")
        if isinstance(meta, dict):
            self.usage = meta
        self.blocked = block_reason(answer) or self.blocked
        candidates = answer.get("candidates")
        candidate = candidates[0] if isinstance(candidates, list) and candidates else None
        if not isinstance(candidate, dict):
            return
        if candidate.get("groundingMetadata"):
            self._candidate = candidate
        found = chat_logprobs(candidate.get("logprobsResult"))  # there when the client asked for them
        self._logprobs = found["content"] if found else []
        parts = gemini_parts.candidate_parts(candidate)
        step_signature = gemini_parts.first_signature(parts)
        for part in parts:
            self._part(part, step_signature)
        if candidate.get("finishReason"):
            self.finish_reason = candidate["finishReason"]

    def _part(self, part: dict, step_signature: str | None) -> None:
        own = gemini_parts.signature(part)
        if own and own not in self._signatures:
            self._signatures.append(own)
        found = gemini_parts.kind(part)
        if found is Kind.THOUGHT:
            self._thought(gemini_parts.text_of(part), own)
            return
        if self._open is not None and self._open["type"] == "reasoning":
            # The signature usually rides on the part that ends the thoughts (a call, or the answer).
            self._close(signature=self._reasoning_signature or own or step_signature)
        if found is Kind.FUNCTION_CALL:
            self._call(part["functionCall"], own)
        else:
            self._message_text(self._text.part(part))

    # -- items ------------------------------------------------------------------------------------
    def _add(self, item: dict, shown: dict) -> int:
        self.items.append(item)
        index = len(self.items) - 1
        self.sink.event("response.output_item.added", {"output_index": index, "item": shown})
        return index

    def _done(self, index: int) -> None:
        self.sink.event("response.output_item.done", {"output_index": index, "item": self.items[index]})

    def _thought(self, text: str, own: str | None) -> None:
        item = self._open
        if item is None or item["type"] != "reasoning":
            self._close()
            item = {"id": self.ids("rs"), "type": "reasoning", "summary": [], "encrypted_content": None}
            self._add(item, {**item, "summary": []})
            self._open = item
            self._reasoning_signature = None
        self._reasoning_signature = self._reasoning_signature or own
        if not text:
            return
        where = {"item_id": item["id"], "output_index": len(self.items) - 1, "summary_index": 0}
        if not item["summary"]:
            item["summary"].append({"type": "summary_text", "text": ""})
            self.sink.event(
                "response.reasoning_summary_part.added",
                {**where, "part": {"type": "summary_text", "text": ""}},
            )
        item["summary"][0]["text"] += text
        self.sink.event("response.reasoning_summary_text.delta", {**where, "delta": text})

    def _message_text(self, text: str) -> None:
        if not text:
            return
        item = self._open
        if item is None or item["type"] != "message":
            self._close()
            item = {
                "id": self.ids("msg"),
                "type": "message",
                "status": "in_progress",
                "content": [],
                "role": "assistant",
            }
            self._add(item, {**item, "content": []})
            self._open = item
            item["content"].append({"type": "output_text", "annotations": [], "logprobs": [], "text": ""})
            self.sink.event(
                "response.content_part.added",
                {
                    **self._where(item),
                    "part": {"type": "output_text", "annotations": [], "logprobs": [], "text": ""},
                },
            )
        entries, self._logprobs = self._logprobs, []  # each response's tokens go with its first text
        item["content"][0]["text"] += text
        item["content"][0]["logprobs"].extend(entries)
        self.sink.event(
            "response.output_text.delta", {**self._where(item), "delta": text, "logprobs": entries}
        )

    def _where(self, item: dict) -> dict:
        return {"item_id": item["id"], "output_index": len(self.items) - 1, "content_index": 0}

    def _call(self, call: dict, own: str | None) -> None:
        self._close()
        if self.calls and not self.parallel_tool_calls:
            return  # the client asked for one call per turn: Gemini has no such switch
        self.calls += 1
        gemini_name = str(call.get("name") or "")
        namespace, name = self.names.split(gemini_name)
        gemini_id = call.get("id") if isinstance(call.get("id"), str) else None
        if own:
            self._carried.add(own)
        given = call.get("args")
        args: dict = given if isinstance(given, dict) else {}
        head: dict = {"call_id": tool_ids.encode(gemini_id, own), "name": name}
        if namespace:
            head["namespace"] = namespace
        if gemini_name in self.names.custom:
            value = args.get(_CUSTOM_INPUT)
            text = value if isinstance(value, str) else jsonx.dumps(args).decode()
            prefix, kind, field = "ctc", "custom_tool_call", "input"
        else:
            text = jsonx.dumps(args).decode()
            prefix, kind, field = "fc", "function_call", "arguments"
        item = {"id": self.ids(prefix), "type": kind, "status": "completed", **head, field: text}
        index = self._add(item, {**item, "status": "in_progress", field: ""})
        where = {"item_id": item["id"], "output_index": index}
        events = _CALL_EVENTS[kind]
        self.sink.event(events + ".delta", {**where, "delta": text})
        self.sink.event(events + ".done", {**where, field: text})
        self._done(index)

    def _close(self, *, signature: str | None = None, status: str = "completed") -> None:
        item, self._open = self._open, None
        if item is None:
            return
        index = self.items.index(item)
        if item["type"] == "reasoning":
            if signature:
                item["encrypted_content"] = encrypted_signature(signature)
                self._carried.add(signature)
            if item["summary"]:
                where = {"item_id": item["id"], "output_index": index, "summary_index": 0}
                text = item["summary"][0]["text"]
                self.sink.event("response.reasoning_summary_text.done", {**where, "text": text})
                self.sink.event("response.reasoning_summary_part.done", {**where, "part": item["summary"][0]})
        else:
            where = {"item_id": item["id"], "output_index": index, "content_index": 0}
            content = item["content"][0]
            content["annotations"] = [
                {
                    "type": "url_citation",
                    "start_index": c.start,
                    "end_index": c.end,
                    "url": c.url,
                    "title": c.title,
                }
                for c in citations(self._candidate)
            ]
            item["status"] = status
            self.sink.event(
                "response.output_text.done",
                {**where, "text": content["text"], "logprobs": content["logprobs"]},
            )
            self.sink.event("response.content_part.done", {**where, "part": content})
        self._done(index)

    # -- the end ----------------------------------------------------------------------------------
    def finish(self) -> tuple[str, dict | None, dict | None]:
        """Close what is open; (status, incomplete_details, error) of the whole response."""
        found = outcome(self.finish_reason)
        status, details, error = "completed", None, None
        if self.blocked and not self.items:
            status, details = "incomplete", {"reason": "content_filter"}
        elif found is Outcome.LENGTH:
            status, details = "incomplete", {"reason": "max_output_tokens"}
        elif found is Outcome.REFUSAL:
            status, details = "incomplete", {"reason": "content_filter"}
        elif found is Outcome.TOOL_FAILURE:
            status = "failed"
            error = {
                "code": "server_error",
                "message": f"Gemini ended its answer with {self.finish_reason} (no valid tool call came back).",
            }
        reasoning = self._open is not None and self._open["type"] == "reasoning"
        item_status = "completed" if status == "completed" else "incomplete"  # an item is never "failed"
        self._close(signature=self._reasoning_signature if reasoning else None, status=item_status)
        for signature in self._signatures:
            if signature not in self._carried:
                self._signature_item(signature)
        return status, details, error

    def _signature_item(self, signature: str) -> None:
        item = {
            "id": self.ids("rs"),
            "type": "reasoning",
            "summary": [],
            "encrypted_content": encrypted_signature(signature),
        }
        index = self._add(item, {**item, "encrypted_content": None})
        self._carried.add(signature)
        self._done(index)


# -- the response object ------------------------------------------------------------------------------


def shell(body: dict, ids: ItemIds, *, store: bool, created_at: int | None = None) -> dict:
    """The Response object before any output: the request's settings echoed, as OpenAI does."""
    reasoning = body.get("reasoning") or {}
    text = body.get("text") or {}
    return {
        "id": ids.response,
        "object": "response",
        "created_at": created_at if created_at is not None else int(time.time()),
        "status": "in_progress",
        "background": False,
        "completed_at": None,
        "error": None,
        "incomplete_details": None,
        "instructions": body.get("instructions"),
        "max_output_tokens": body.get("max_output_tokens"),
        "max_tool_calls": body.get("max_tool_calls"),
        "model": body["model"],
        "output": [],
        "parallel_tool_calls": body.get("parallel_tool_calls") is not False,
        "previous_response_id": body.get("previous_response_id"),
        "prompt_cache_key": body.get("prompt_cache_key"),
        "reasoning": {"effort": reasoning.get("effort"), "summary": reasoning.get("summary")},
        "safety_identifier": body.get("safety_identifier"),
        "service_tier": body.get("service_tier") or "default",
        "store": store,
        "temperature": body.get("temperature"),
        "text": {
            "format": text.get("format") or {"type": "text"},
            "verbosity": text.get("verbosity") or "medium",
        },
        "tool_choice": body.get("tool_choice") or "auto",
        "tools": body.get("tools") or [],
        "top_logprobs": body.get("top_logprobs") or 0,
        "top_p": body.get("top_p"),
        "truncation": body.get("truncation") or "disabled",
        "usage": None,
        "user": body.get("user"),
        "metadata": body.get("metadata") or {},
    }


def finished(response: dict, builder: OutputBuilder) -> dict:
    """The response once its answer has ended: status, output, usage."""
    status, details, error = builder.finish()
    return {
        **response,
        "status": status,
        "completed_at": int(time.time()) if status == "completed" else None,
        "error": error,
        "incomplete_details": details,
        "output": builder.items,
        "usage": usage(builder.usage),
    }


def whole_response(answer: dict, response: dict, ids: ItemIds, names: ToolNames) -> dict:
    """The finished response for Gemini's whole (non-streamed) answer."""
    builder = OutputBuilder(ids, names, parallel_tool_calls=response["parallel_tool_calls"])
    builder.feed(answer)
    return finished(response, builder)


def shown(value: dict, include_encrypted: bool) -> dict:
    """An item or a whole response as the client sees it: a reasoning item's `encrypted_content`
    only when the client asked for it (or keeps no state here), as OpenAI does."""
    if include_encrypted:
        return value
    if value.get("type") == "reasoning" and value.get("encrypted_content"):
        return {**value, "encrypted_content": None}
    if value.get("object") == "response":
        return {**value, "output": [shown(item, False) for item in value["output"]]}
    return value


def wants_encrypted(include: list | None, store: bool) -> bool:
    return not store or ENCRYPTED_REASONING in (include or ())
