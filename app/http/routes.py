"""Route labels: the matched route of a request as a bounded name, for metrics and usage records."""

from __future__ import annotations

import re

from flask import g, request

GEMINI_METHODS = frozenset(
    (
        "generateContent",
        "streamGenerateContent",
        "countTokens",
        "embedContent",
        "batchEmbedContents",
        "predict",
        "predictLongRunning",
        "batchGenerateContent",
        "asyncBatchEmbedContent",
    )
)
_RULE_ARG = re.compile(r"<(?:[^:<>]+:)?([^<>]+)>")
_ROUTES: dict[tuple, str] = {}


def route_label() -> str:
    """The matched route as a bounded label: `/v1beta/models/{model}:generateContent`, not the path.
    A view whose rule is a catch-all names its route itself (`g.route_label`)."""
    named = g.get("route_label")
    if named:
        return named
    rule = request.url_rule
    if rule is None:
        return "unmatched"
    action = None
    if "model_action" in rule.arguments:
        action = (request.view_args or {}).get("model_action", "").rpartition(":")[2]
        if action not in GEMINI_METHODS:
            action = "unknown"
    key = (rule.rule, action)
    label = _ROUTES.get(key)
    if label is None:
        label = _RULE_ARG.sub(lambda m: f"{{{m.group(1)}}}", rule.rule)
        if action is not None:
            label = label.replace("{model_action}", "{model}:" + action)
        _ROUTES[key] = label
    return label
