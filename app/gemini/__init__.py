"""The Gemini-native dialect: validate, relay to Gemini, relay back."""
