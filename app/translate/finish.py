"""Why Gemini stopped: its finish and block reasons sorted into the few outcomes every dialect reports."""

from __future__ import annotations

from enum import Enum

from ..errors import UpstreamIncomplete


class Outcome(Enum):
    STOP = "stop"  # a natural end (function-call answers end with STOP too)
    LENGTH = "length"  # the output token limit
    REFUSAL = "refusal"  # a safety, recitation, policy or language filter withheld the answer
    TOOL_FAILURE = "tool_failure"  # the model botched a function call
    OTHER = "other"  # anything else Gemini names (OTHER, NO_IMAGE, a reason newer than this list)


# Gemini's FinishReason values by outcome (google-genai's full list; see WIRE.md).
REFUSALS = frozenset(
    {
        "SAFETY",
        "RECITATION",
        "LANGUAGE",
        "BLOCKLIST",
        "PROHIBITED_CONTENT",
        "SPII",
        "IMAGE_SAFETY",
        "IMAGE_PROHIBITED_CONTENT",
        "IMAGE_RECITATION",
    }
)
TOOL_FAILURES = frozenset(
    {
        "MALFORMED_FUNCTION_CALL",
        "UNEXPECTED_TOOL_CALL",
        "TOO_MANY_TOOL_CALLS",
        "MISSING_THOUGHT_SIGNATURE",
        "MALFORMED_RESPONSE",
    }
)


def outcome(finish_reason: str | None) -> Outcome:
    """The outcome of a candidate's `finishReason` (None, as on a stream cut short, reads as STOP)."""
    if finish_reason in (None, "STOP", "FINISH_REASON_UNSPECIFIED"):
        return Outcome.STOP
    if finish_reason == "MAX_TOKENS":
        return Outcome.LENGTH
    if finish_reason in REFUSALS:
        return Outcome.REFUSAL
    if finish_reason in TOOL_FAILURES:
        return Outcome.TOOL_FAILURE
    return Outcome.OTHER


def botched_tool_call(answer: dict) -> str | None:
    """The finish reason of a candidate whose function call Gemini botched (MALFORMED_FUNCTION_CALL...),
    or None: such an answer is worth asking for once more while the client has seen nothing of it."""
    candidates = answer.get("candidates")
    for candidate in candidates if isinstance(candidates, list) else ():
        reason = candidate.get("finishReason") if isinstance(candidate, dict) else None
        if reason in TOOL_FAILURES:
            return reason
    return None


def finished(answer: dict) -> bool:
    """Whether a (streamed) answer says why it ended: a candidate's finishReason, or a blocked prompt.
    A stream whose events never say so was cut short, whatever the connection did."""
    if block_reason(answer):
        return True
    candidates = answer.get("candidates")
    return any(
        isinstance(c, dict) and bool(c.get("finishReason"))
        for c in (candidates if isinstance(candidates, list) else ())
    )


def block_reason(answer: dict) -> str | None:
    """`promptFeedback.blockReason`: Gemini refused the prompt itself (the answer has no candidates)."""
    feedback = answer.get("promptFeedback")
    reason = feedback.get("blockReason") if isinstance(feedback, dict) else None
    return reason if isinstance(reason, str) and reason else None


def cut_short() -> UpstreamIncomplete:
    """The error of a stream that ended before Gemini said why it stopped."""
    return UpstreamIncomplete("Gemini's stream ended before the answer did (no finish reason); try again.")


def tool_call_failure(reason: str, message: object = None) -> UpstreamIncomplete:
    """The error of an answer whose function call Gemini botched, after asking once more."""
    detail = f": {message[:500]}" if isinstance(message, str) and message else ""
    return UpstreamIncomplete(
        f"Gemini could not complete a tool call (finish reason {reason}){detail}. Simplifying the tool "
        "declarations or retrying usually helps."
    )
