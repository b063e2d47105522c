"""The OpenAI Responses API (`/v1/responses`) over Gemini: views, translators, stream and stored responses."""
