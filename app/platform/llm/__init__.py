"""The LLM gateway: endpoints, the client with retry and rate limits, the response cache and budgets."""
