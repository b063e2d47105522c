"""OpenAI `/v1/embeddings` as Gemini `batchEmbedContents` calls (at most 100 texts each), and back."""

from __future__ import annotations

import base64
import struct

from ..budget import MAX_EMBEDDING_INPUTS
from ..errors import InvalidRequest, UpstreamUnavailable
from ..upstream.model_catalog import model_id

BATCH_SIZE = 100  # Gemini's limit per batchEmbedContents call
DEFAULT_MODEL = "gemini-embedding-001"


def model_name(name: str) -> str:
    """The Gemini embedding model for `model`: OpenAI's names (`text-embedding-3-small`...) map to the default."""
    if name.startswith("text-embedding-"):
        return DEFAULT_MODEL
    return model_id(name)


def batches(texts: list[str], model: str, dimensions: int | None) -> list[dict]:
    """The batchEmbedContents bodies for `texts`, in order; 400 past MAX_EMBEDDING_INPUTS texts."""
    if len(texts) > MAX_EMBEDDING_INPUTS:
        raise InvalidRequest(
            f"At most {MAX_EMBEDDING_INPUTS} inputs are accepted in one request; got {len(texts)}.",
            param="input",
        )
    requests = []
    for text in texts:
        request: dict = {"model": f"models/{model}", "content": {"parts": [{"text": text}]}}
        if dimensions:
            request["outputDimensionality"] = dimensions
        requests.append(request)
    return [{"requests": requests[i : i + BATCH_SIZE]} for i in range(0, len(requests), BATCH_SIZE)]


def vectors(answer: dict, expected: int) -> list[list[float]]:
    embeddings = answer.get("embeddings") if isinstance(answer, dict) else None
    if not isinstance(embeddings, list) or len(embeddings) != expected:
        raise UpstreamUnavailable("Gemini answered with the wrong number of embeddings.")
    out = []
    for embedding in embeddings:
        values = embedding.get("values") if isinstance(embedding, dict) else None
        if not isinstance(values, list):
            raise UpstreamUnavailable("Gemini sent an embedding without values.")
        out.append(values)
    return out


def encode_base64(values: list[float]) -> str:
    """OpenAI's base64 encoding: little-endian float32s."""
    return base64.b64encode(struct.pack(f"<{len(values)}f", *values)).decode("ascii")


def embeddings_response(
    values: list[list[float]], model: str, encoding_format: str | None, prompt_tokens: int
) -> dict:
    encode = encode_base64 if encoding_format == "base64" else list
    return {
        "object": "list",
        "data": [{"object": "embedding", "index": i, "embedding": encode(v)} for i, v in enumerate(values)],
        "model": model,
        "usage": {"prompt_tokens": prompt_tokens, "total_tokens": prompt_tokens},
    }
