"""Token counts from Gemini's `usageMetadata`, read one way for every dialect and for accounting."""

from __future__ import annotations

from dataclasses import dataclass


def count(value: object) -> int:
    """A token count as Gemini sends it: a non-negative integer (a boolean or anything else is 0)."""
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def modality_count(details: object, modality: str) -> int:
    """The tokens of one modality (`AUDIO`, `IMAGE`...) in a `*TokensDetails` list."""
    if not isinstance(details, list):
        return 0
    return sum(
        count(d.get("tokenCount")) for d in details if isinstance(d, dict) and d.get("modality") == modality
    )


@dataclass(frozen=True)
class TokenCounts:
    """One answer's tokens. Gemini counts cached tokens inside the prompt and thoughts outside the
    candidates; every dialect charges thoughts as output, as OpenAI and Anthropic do."""

    prompt: int = 0  # promptTokenCount, cached tokens included
    cached: int = 0  # cachedContentTokenCount
    tool_prompt: int = 0  # toolUsePromptTokenCount: what tools (search, code) added to the prompt
    candidates: int = 0  # candidatesTokenCount: the answer, thoughts excluded
    thoughts: int = 0  # thoughtsTokenCount
    prompt_audio: int = 0
    output_audio: int = 0

    @property
    def input(self) -> int:
        return self.prompt + self.tool_prompt

    @property
    def output(self) -> int:
        return self.candidates + self.thoughts

    @property
    def total(self) -> int:
        return self.input + self.output


NO_TOKENS = TokenCounts()


def token_counts(meta: object) -> TokenCounts:
    """The counts in a `usageMetadata` object; all zero when there is none."""
    if not isinstance(meta, dict):
        return NO_TOKENS
    return TokenCounts(
        prompt=count(meta.get("promptTokenCount")),
        cached=count(meta.get("cachedContentTokenCount")),
        tool_prompt=count(meta.get("toolUsePromptTokenCount")),
        candidates=count(meta.get("candidatesTokenCount")),
        thoughts=count(meta.get("thoughtsTokenCount")),
        prompt_audio=modality_count(meta.get("promptTokensDetails"), "AUDIO"),
        output_audio=modality_count(meta.get("candidatesTokensDetails"), "AUDIO"),
    )
