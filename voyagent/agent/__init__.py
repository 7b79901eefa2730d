"""The offline agent's deterministic parts (chat-and-agent.md §8, §11): the grammar and the sandbox supplier.

Not routed yet: the streaming turn endpoint (issue 11, later part) calls them through the tool gateway.
"""
