import time

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from domain.access import DEV_ADMIN, Role
from schema.auth import AuthenticationError, Authenticator
from schema.settings import Settings

SECRET = "test-secret-that-is-long-enough-for-hs256"


def token(claims: dict[str, object], key: object = SECRET, algorithm: str = "HS256") -> str:
    return jwt.encode({"exp": int(time.time()) + 60, **claims}, key, algorithm=algorithm)  # type: ignore[arg-type]


def hs256() -> Authenticator:
    return Authenticator(Settings(auth="jwt", jwt_secret=SECRET))


def test_dev_mode_makes_every_caller_an_admin() -> None:
    assert Authenticator(Settings(auth="dev")).authenticate(None) is DEV_ADMIN


def test_hs256_token_gives_roles() -> None:
    principal = hs256().authenticate("Bearer " + token({"sub": "svc-1", "roles": ["service"]}))
    assert principal.roles == {Role.SERVICE}
    assert principal.can_read_customer("cus_1")
    assert not principal.can_read_pii("cus_1")


def test_customer_token_reads_only_their_own_data() -> None:
    principal = hs256().authenticate("Bearer " + token({"sub": "cus_1", "roles": "customer"}))
    assert principal.customer_id == "cus_1"
    assert principal.can_read_customer("cus_1")
    assert principal.can_read_pii("cus_1")
    assert not principal.can_read_customer("cus_2")


@pytest.mark.parametrize(
    "header",
    [
        None,
        "",
        "Basic abc",
        "Bearer ",
        "Bearer not-a-jwt",
        "Bearer " + token({"sub": "x", "roles": ["admin"]}, key="another-secret-of-enough-length!"),
        "Bearer " + token({"sub": "x", "roles": ["admin"], "exp": int(time.time()) - 10}),
        "Bearer " + token({"sub": "x", "roles": ["superuser"]}),
        "Bearer " + jwt.encode({"sub": "x", "roles": ["admin"]}, SECRET, algorithm="HS256"),
    ],
)
def test_bad_credentials_are_rejected(header: str | None) -> None:
    with pytest.raises(AuthenticationError):
        hs256().authenticate(header)


def test_rs256_with_public_key() -> None:
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public_pem = (
        private.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    auth = Authenticator(Settings(auth="jwt", jwt_public_key=public_pem, jwt_audience="omnix"))
    good = token({"sub": "a", "roles": ["analyst"], "aud": "omnix"}, private, "RS256")
    assert auth.authenticate(f"Bearer {good}").roles == {Role.ANALYST}
    wrong_audience = token({"sub": "a", "roles": ["analyst"], "aud": "other"}, private, "RS256")
    with pytest.raises(AuthenticationError):
        auth.authenticate(f"Bearer {wrong_audience}")
    forged = token({"sub": "a", "roles": ["admin"], "aud": "omnix"}, SECRET, "HS256")
    with pytest.raises(AuthenticationError):
        auth.authenticate(f"Bearer {forged}")
