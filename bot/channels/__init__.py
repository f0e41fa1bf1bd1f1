"""Ways to talk to the advisor: each renders the engine's `Turn` (terminal, Telegram)."""
