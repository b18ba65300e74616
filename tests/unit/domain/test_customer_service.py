import pytest

from domain.customers import Consent
from domain.errors import ConflictError, NotFoundError, ValidationError
from schema.app import Container


async def test_register_normalises_and_defaults_consent_to_none(container: Container) -> None:
    customer = await container.customers.register(
        name="  Ada   Lovelace ", email="Ada@Example.COM", consent=None, idempotency_key=None
    )
    assert (customer.name, customer.email) == ("Ada Lovelace", "ada@example.com")
    assert customer.consent == Consent()
    assert await container.customers.get(customer.id) == customer


@pytest.mark.parametrize(
    ("name", "email", "code"),
    [
        ("", "a@b.co", "INVALID_NAME"),
        ("x" * 201, "a@b.co", "INVALID_NAME"),
        ("A", "nope", "INVALID_EMAIL"),
    ],
)
async def test_invalid_registration_writes_nothing(
    container: Container, name: str, email: str, code: str
) -> None:
    before = (await container.customer_store.count(), await container.events.head())
    with pytest.raises(ValidationError) as raised:
        await container.customers.register(
            name=name, email=email, consent=None, idempotency_key=None
        )
    assert raised.value.code == code
    assert (await container.customer_store.count(), await container.events.head()) == before


async def test_an_email_is_registered_once(container: Container) -> None:
    await container.customers.register(
        name="A", email="dup@example.com", consent=None, idempotency_key=None
    )
    before = (await container.customer_store.count(), await container.events.head())
    with pytest.raises(ConflictError) as raised:
        await container.customers.register(
            name="B", email="DUP@example.com", consent=None, idempotency_key=None
        )
    assert raised.value.code == "EMAIL_TAKEN"
    assert (await container.customer_store.count(), await container.events.head()) == before


async def test_registration_retry_returns_the_first_customer(container: Container) -> None:
    first = await container.customers.register(
        name="A", email="a@example.com", consent=None, idempotency_key="r-1"
    )
    again = await container.customers.register(
        name="A", email="a@example.com", consent=None, idempotency_key="r-1"
    )
    assert again == first


async def test_set_consent_replaces_the_flags_and_logs_an_event(container: Container) -> None:
    head = await container.events.head()
    updated = await container.customers.set_consent("cus_1", Consent(ai_profiling=True))
    assert updated.consent == Consent(ai_profiling=True)
    logged = await container.events.read(after=head, limit=5)
    assert [e.event.type for e in logged] == ["ConsentChanged"]
    with pytest.raises(NotFoundError):
        await container.customers.set_consent("cus_404", Consent())


async def test_page_size_is_bounded(container: Container) -> None:
    for first in (0, 101):
        with pytest.raises(ValidationError):
            await container.customers.list(first=first, after=None, search=None)
