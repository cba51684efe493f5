"""The configured LLM endpoints (`SIFT_LLM__<NAME>__...`): looked up by name, checked for a
model and for token prices, and their base URL as the cache keys it."""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

from app.platform.config import LLMEndpoint, get_settings
from app.platform.errors import InvalidInput


def _env_prefix(name: str) -> str:
    return f"SIFT_LLM__{name.upper()}__"


def get_endpoint(name: str) -> LLMEndpoint:
    """The configured endpoint called `name`, with a model to ask."""
    endpoint = get_settings().llm.get(name.lower())
    if endpoint is None:
        raise InvalidInput(
            f"no LLM endpoint named '{name}': set {_env_prefix(name)}BASE_URL", endpoint=name
        )
    if not endpoint.model:
        raise InvalidInput(
            f"LLM endpoint '{name}' has no model: set {_env_prefix(name)}MODEL", endpoint=name
        )
    return endpoint


def require_priced(endpoint_name: str, endpoint: LLMEndpoint) -> None:
    """Refuse a budget on an endpoint whose token prices are unknown."""
    if endpoint.priced:
        return
    prefix = _env_prefix(endpoint_name)
    raise InvalidInput(
        f"a budget needs token prices, and LLM endpoint '{endpoint_name}' has none: "
        f"set {prefix}PRICE_IN and {prefix}PRICE_OUT (USD per 1K tokens)",
        endpoint=endpoint_name,
    )


def normalise_base_url(url: str) -> str:
    """The base URL as the cache keys it: lower-case scheme and host, no trailing slash."""
    parts = urlsplit(url.strip())
    path = parts.path.rstrip("/")
    return urlunsplit((parts.scheme.lower(), parts.netloc.lower(), path, parts.query, ""))
