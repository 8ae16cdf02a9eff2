"""Adapters that check every LLM response inline, through a :class:`norefusal.policies.Policy`.

- :mod:`norefusal.integrations.openai`: ``GuardedOpenAI``, ``GuardedAsyncOpenAI``, ``guard()``
  (``pip install "norefusal[openai]"``).
- :mod:`norefusal.integrations.langchain`: callback handlers, the ``NoRefusalGuard`` Runnable and
  ``NoRefusalMiddleware`` for agents (``pip install "norefusal[langchain]"``).

Each module imports its framework only when it is itself imported, so ``import norefusal``
never needs them.
"""

__all__: list[str] = []
