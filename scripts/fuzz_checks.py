"""Schemathesis checks for this API (loaded with SCHEMATHESIS_HOOKS=fuzz_checks).

GraphQL answers expected outcomes (NOT_FOUND, CONFLICT, ...) as errors with an
`extensions.code`, as the product contract says; schemathesis's own GraphQL check would
call those server errors. This check fails only on what is really the server's fault:
a 5xx, an error without a public code, or an INTERNAL error.
"""

import schemathesis

PUBLIC_CODES = {
    "BAD_USER_INPUT",
    "UNAUTHENTICATED",
    "FORBIDDEN",
    "NOT_FOUND",
    "CONFLICT",
    "IDEMPOTENCY_CONFLICT",
    "INSUFFICIENT_BALANCE",
    "PROVIDER_ERROR",
    "SERVICE_UNAVAILABLE",
}


@schemathesis.check
def no_internal_errors(ctx, response, case):
    if response.status_code >= 500:
        raise AssertionError(f"server error: HTTP {response.status_code}")
    try:
        body = response.json()
    except Exception:
        return None
    if isinstance(body, dict) and isinstance(body.get("code"), str):
        # A REST error body ({"code", "message"} and, on the seed 001 face, "errors" naming
        # the wrong fields): its HTTP status already said whose fault it was.
        return None
    errors = body.get("errors") if isinstance(body, dict) else None
    for error in errors or []:
        code = (error.get("extensions") or {}).get("code")
        if code not in PUBLIC_CODES:
            raise AssertionError(f"error without a public code ({code!r}): {error.get('message')}")
    return None


# Our `Money` scalar: a whole number of minor units (a JSON integer, or a string of digits).
# Generate both forms, in and past the accepted range, so the refusals are fuzzed too.
from hypothesis import strategies as st  # noqa: E402
from schemathesis.graphql import nodes  # noqa: E402

schemathesis.graphql.scalar(
    "Money",
    st.one_of(
        st.integers(min_value=-(2**60), max_value=2**60).map(nodes.Int),
        st.integers(min_value=-(2**53), max_value=2**53).map(str).map(nodes.String),
        st.text(max_size=20).map(nodes.String),
    ),
)
