"""OpenAI `/v1/images/generations` as Imagen `:predict` or Gemini image-model `generateContent`, and back."""

from __future__ import annotations

import math
import re

from ..errors import InvalidRequest
from ..upstream.model_catalog import model_id
from .errors import ContentFiltered

DEFAULT_MODEL = "imagen-4.0-generate-001"
IMAGEN_RATIOS = ("1:1", "3:4", "4:3", "9:16", "16:9")
GEMINI_RATIOS = ("1:1", "2:3", "3:2", "3:4", "4:3", "4:5", "5:4", "9:16", "16:9", "21:9")
_SIZE = re.compile(r"^(\d{1,5})x(\d{1,5})$")
# OpenAI's image model names: clients that only change the base URL send these.
_OPENAI_MODELS = re.compile(r"^(dall-e-[23]|gpt-image-[\w.-]+)$")


def model_name(name: str | None) -> str:
    if name is None or _OPENAI_MODELS.match(name):
        return DEFAULT_MODEL
    return model_id(name)


def kind(model: str) -> str:
    """'imagen' (`:predict`) or 'gemini' (`generateContent` on an image model); 400 for anything else."""
    if model.startswith("imagen"):
        return "imagen"
    if model.startswith("gemini") and "image" in model:
        return "gemini"
    raise InvalidRequest(
        f"Model {model!r} does not generate images; use an Imagen model ({DEFAULT_MODEL!r}) "
        "or a Gemini image model such as 'gemini-2.5-flash-image'.",
        param="model",
    )


def aspect_ratio(size: str | None, ratios: tuple[str, ...]) -> str | None:
    """The supported aspect ratio nearest to an OpenAI `size` ("1792x1024"); a ratio ("16:9") is taken as is."""
    if size is None or size == "auto":
        return None
    if size in ratios:
        return size
    match = _SIZE.match(size)
    if not match or not int(match.group(1)) or not int(match.group(2)):
        raise InvalidRequest(
            f"Invalid size {size!r}: use WIDTHxHEIGHT (like 1024x1024), 'auto', or one of {', '.join(ratios)}.",
            param="size",
        )
    want = math.log(int(match.group(1)) / int(match.group(2)))
    return min(ratios, key=lambda r: abs(math.log(_ratio(r)) - want))


def _ratio(text: str) -> float:
    w, h = text.split(":")
    return int(w) / int(h)


def predict_request(prompt: str, n: int, ratio: str | None) -> dict:
    parameters: dict = {"sampleCount": n}
    if ratio:
        parameters["aspectRatio"] = ratio
    return {"instances": [{"prompt": prompt}], "parameters": parameters}


def generate_request(prompt: str, ratio: str | None) -> dict:
    config: dict = {"responseModalities": ["TEXT", "IMAGE"]}
    if ratio:
        config["imageConfig"] = {"aspectRatio": ratio}
    return {"contents": [{"role": "user", "parts": [{"text": prompt}]}], "generationConfig": config}


def from_predict(answer: dict) -> list[tuple[str, str]]:
    """(mime type, base64) of each image Imagen returned; 400 when it filtered every one."""
    images, reasons = [], []
    for prediction in answer.get("predictions") or []:
        if not isinstance(prediction, dict):
            continue
        if prediction.get("bytesBase64Encoded"):
            images.append((prediction.get("mimeType") or "image/png", prediction["bytesBase64Encoded"]))
        elif prediction.get("raiFilteredReason"):
            reasons.append(prediction["raiFilteredReason"])
    if not images:
        detail = f": {reasons[0]}" if reasons else "."
        raise ContentFiltered(f"Imagen returned no image{detail}", param="prompt")
    return images


def from_generate(answer: dict) -> list[tuple[str, str]]:
    """(mime type, base64) of each image in a Gemini answer; 400 when there is none."""
    images = []
    reason = (answer.get("promptFeedback") or {}).get("blockReason")
    for candidate in answer.get("candidates") or []:
        reason = candidate.get("finishReason") or reason
        for part in (candidate.get("content") or {}).get("parts") or []:
            blob = part.get("inlineData") if isinstance(part, dict) else None
            if (
                isinstance(blob, dict)
                and str(blob.get("mimeType", "")).startswith("image/")
                and blob.get("data")
            ):
                images.append((blob["mimeType"], blob["data"]))
    if not images:
        raise ContentFiltered(
            f"Gemini returned no image (finish reason {reason or 'unknown'}).", param="prompt"
        )
    return images


def images_response(
    images: list[tuple[str, str]], created: int, response_format: str | None, usage: dict | None
) -> dict:
    """OpenAI's ImagesResponse; `url` answers carry data URLs (the gateway keeps no files to link to)."""
    data = []
    for mime, b64 in images:
        if response_format == "url":
            data.append({"url": f"data:{mime};base64,{b64}"})
        else:
            data.append({"b64_json": b64})
    out: dict = {"created": created, "data": data}
    formats = {mime.split("/", 1)[1] for mime, _ in images}
    if len(formats) == 1:
        out["output_format"] = formats.pop().replace("jpg", "jpeg")
    if isinstance(usage, dict):
        prompt = usage.get("promptTokenCount", 0)
        output = usage.get("candidatesTokenCount", 0) + usage.get("thoughtsTokenCount", 0)
        out["usage"] = {
            "input_tokens": prompt,
            "input_tokens_details": {"image_tokens": 0, "text_tokens": prompt},
            "output_tokens": output,
            "total_tokens": prompt + output,
        }
    return out
