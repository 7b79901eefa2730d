"""The agent (chat-and-agent.md §4–§11): the backends (offline grammar and sandbox, Anthropic), the tool
gateway with its tools, the resume step and the turn runner that ``POST /chat/sessions/{id}/messages`` starts."""
