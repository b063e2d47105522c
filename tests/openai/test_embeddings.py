"""OpenAI embeddings <-> Gemini batchEmbedContents."""

import base64
import struct

import pytest

from app.errors import UpstreamUnavailable
from app.openai import embeddings
from tests.conftest import fixture_json


def test_batches_of_at_most_100_in_order():
    texts = [f"t{i}" for i in range(250)]
    batches = embeddings.batches(texts, "gemini-embedding-001", 768)
    assert [len(b["requests"]) for b in batches] == [100, 100, 50]
    assert batches[2]["requests"][-1] == {
        "model": "models/gemini-embedding-001",
        "content": {"parts": [{"text": "t249"}]},
        "outputDimensionality": 768,
    }
    assert "outputDimensionality" not in embeddings.batches(["x"], "m", None)[0]["requests"][0]


def test_vectors_from_the_recorded_answer():
    answer = fixture_json("gemini/embed_batch.json")
    values = embeddings.vectors(answer, len(answer["embeddings"]))
    assert values[0] == answer["embeddings"][0]["values"]
    with pytest.raises(UpstreamUnavailable):
        embeddings.vectors(answer, len(answer["embeddings"]) + 1)
    with pytest.raises(UpstreamUnavailable):
        embeddings.vectors({"embeddings": [{}]}, 1)


def test_base64_is_little_endian_float32():
    encoded = embeddings.encode_base64([0.0023064255, -0.009327292, -0.0028842222, 0.015797347])
    # The same four values OpenAI's recorded answers hold in both encodings.
    assert encoded == fixture_json("openai/embeddings_base64.json")["data"][0]["embedding"]
    assert struct.unpack("<2f", base64.b64decode(embeddings.encode_base64([1.5, -2.0]))) == (1.5, -2.0)


def test_response_shape():
    out = embeddings.embeddings_response([[1.0, 2.0], [3.0, 4.0]], "text-embedding-3-small", None, 7)
    assert out == {
        "object": "list",
        "model": "text-embedding-3-small",
        "usage": {"prompt_tokens": 7, "total_tokens": 7},
        "data": [
            {"object": "embedding", "index": 0, "embedding": [1.0, 2.0]},
            {"object": "embedding", "index": 1, "embedding": [3.0, 4.0]},
        ],
    }


@pytest.mark.parametrize(
    "name, model",
    [
        ("text-embedding-3-small", embeddings.DEFAULT_MODEL),
        ("text-embedding-ada-002", embeddings.DEFAULT_MODEL),
        ("models/gemini-embedding-001", "gemini-embedding-001"),
    ],
)
def test_model_names(name, model):
    assert embeddings.model_name(name) == model
