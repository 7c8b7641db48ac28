"""Per-tenant retrieval policy for chat: ``off`` | ``always`` | ``auto``.

Stored on the tenant's row (``tenants.rag_policy``), so it reaches every gateway replica with
the key ring's refresh and costs nothing per request. An unset policy means ``auto`` for a
tenant with a ``rag_collection`` and ``off`` otherwise.

* ``off``: no retrieval unless the request opts in (``"rag": {"enabled": true}``).
* ``always``: retrieve for every chat request unless it opts out (``"enabled": false``).
* ``auto``: retrieve, but ground only on chunks that lexical and dense search both rank in
  their top ``k`` (RRF score at least 2/(60+k)): no context is better than weak context.
"""

from __future__ import annotations

from paramstack.errors import InvalidInput

POLICIES = ("off", "always", "auto")


def check_rag_policy(policy: str | None) -> None:
    if policy is not None and policy not in POLICIES:
        raise InvalidInput(f"rag_policy must be one of {', '.join(POLICIES)}", param="rag_policy")


def rag_policy(stored: str | None, rag_collection: str | None) -> str:
    """The policy in force: the stored one, else the default for the tenant's setup."""
    if stored is not None:
        return stored
    return "auto" if rag_collection is not None else "off"
