"""Credentials to principals. ``dev``: every caller is an admin (local use only). ``jwt``: bearer
tokens signed with HS256 (a shared secret) or RS256 (a public key), carrying the roles."""

from __future__ import annotations

import logging
from typing import Any

import jwt

from domain.access import DEV_ADMIN, Principal, Role
from schema.settings import Settings

log = logging.getLogger("omnix.auth")


class AuthenticationError(Exception):
    """No credentials, or credentials that do not verify."""


class Authenticator:
    def __init__(self, settings: Settings) -> None:
        self._mode = settings.auth
        self._audience = settings.jwt_audience
        self._issuer = settings.jwt_issuer
        if settings.jwt_public_key:
            self._key: str | None = settings.jwt_public_key
            self._algorithms = ["RS256"]
        else:
            self._key = settings.jwt_secret
            self._algorithms = ["HS256"]

    @property
    def mode(self) -> str:
        return self._mode

    def authenticate(self, authorization: str | None) -> Principal:
        """Turn an ``Authorization`` header value (``Bearer <token>``) into a principal."""
        if self._mode == "dev":
            return DEV_ADMIN
        if not authorization:
            raise AuthenticationError("missing bearer token")
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise AuthenticationError("expected 'Authorization: Bearer <token>'")
        return self.verify(token.strip())

    def verify(self, token: str) -> Principal:
        assert self._key is not None
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                self._key,
                algorithms=self._algorithms,
                audience=self._audience,
                issuer=self._issuer,
                options={"require": ["sub", "exp"], "verify_aud": self._audience is not None},
            )
        except jwt.PyJWTError as e:
            raise AuthenticationError(f"invalid token: {e}") from e
        return principal_from_claims(claims)


def principal_from_claims(claims: dict[str, Any]) -> Principal:
    raw = claims.get("roles", [])
    if isinstance(raw, str):
        raw = raw.split()
    roles: set[Role] = set()
    for name in raw if isinstance(raw, list) else []:
        try:
            roles.add(Role(str(name)))
        except ValueError:
            continue
    if not roles:
        raise AuthenticationError("token carries no known role (admin, analyst, service, customer)")
    subject = str(claims["sub"])
    customer_id = claims.get("customer_id")
    if Role.CUSTOMER in roles and customer_id is None:
        customer_id = subject
    return Principal(subject=subject, roles=frozenset(roles), customer_id=customer_id)
