"""An LLM that answers `ask` messages: an OpenAI-compatible chat-completions endpoint, streamed,
its answer cut into sentences as they arrive so the first is spoken before the last is
written."""
