"""What the avatar says and how it sounds: speech providers behind one Protocol, the fallback
chain that uses them, and the LLM that answers `ask` messages (llm/)."""
