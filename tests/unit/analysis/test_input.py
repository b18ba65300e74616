import json
from dataclasses import replace
from datetime import timedelta

import pytest

from domain.analysis import (
    ANALYSIS_PURCHASES,
    AnswerFormatError,
    body_to_answer,
    build_input,
    parse_body,
)
from domain.predictions import ConsumptionStatus
from domain.services.local_analyst import LocalAnalyst
from tests.unit.analysis.fakes import NOW, PRODUCTS, customer, predictions, purchases


def test_input_is_pseudonymous_and_holds_the_newest_twenty_purchases() -> None:
    given = build_input(customer(), purchases(n=30), predictions(), PRODUCTS, as_of=NOW)
    text = given.to_json()
    assert "Ada" not in text
    assert "Lovelace" not in text
    assert "@example.com" not in text
    assert len(given.purchases) == ANALYSIS_PURCHASES
    assert [p.days_ago for p in given.purchases[:2]] == [3.0, 6.0]
    assert given.purchases[0].lines[1].amount_cents == 199 - 20
    assert given.purchases[0].lines[0].product == "Whole milk 1 l"
    assert json.loads(text)["customer_id"] == "cus_1"


def test_staples_are_re_read_at_as_of() -> None:
    given = build_input(customer(), purchases(), predictions(), PRODUCTS, as_of=NOW)
    status = {s.sku: s.status for s in given.staples}
    assert status == {
        "MILK": ConsumptionStatus.DUE_SOON,
        "BREAD": ConsumptionStatus.OVERDUE,
        "COFFEE": ConsumptionStatus.ON_TRACK,
        "EGGS": ConsumptionStatus.LAPSED,
    }
    assert set(given.due_skus) == {"MILK", "BREAD"}
    later = build_input(
        customer(), purchases(), predictions(), PRODUCTS, as_of=NOW + timedelta(days=20)
    )
    assert {s.sku: s.status for s in later.staples}["COFFEE"] == ConsumptionStatus.OVERDUE


def test_profile_only_with_ai_profiling_consent() -> None:
    without = build_input(customer(), purchases(), predictions(), PRODUCTS, as_of=NOW)
    with_consent = build_input(
        customer(profiling=True), purchases(), predictions(), PRODUCTS, as_of=NOW
    )
    assert without.profile is None
    assert with_consent.profile is not None
    assert LocalAnalyst().answer(without).socioeconomic is None
    assert LocalAnalyst().answer(with_consent).socioeconomic is not None


def test_fingerprint_changes_with_a_new_purchase_and_not_otherwise() -> None:
    history = purchases()
    a = build_input(customer(), history, predictions(), PRODUCTS, as_of=NOW)
    b = build_input(customer(), list(history), predictions(), PRODUCTS, as_of=NOW)
    newer = replace(history[0], id="pur_new", purchased_at=NOW - timedelta(hours=1))
    c = build_input(customer(), [newer, *history], predictions(), PRODUCTS, as_of=NOW)
    assert a.fingerprint() == b.fingerprint() != c.fingerprint()


def test_input_without_predictions_or_purchases() -> None:
    given = build_input(customer(), [], None, PRODUCTS, as_of=NOW)
    body = LocalAnalyst().answer(given)
    assert given.staples == ()
    assert given.forecast is None
    assert len(body.actions) == 3
    assert body.consumption.due == ()


def test_a_valid_answer_round_trips_through_the_parser() -> None:
    given = build_input(customer(profiling=True), purchases(), predictions(), PRODUCTS, as_of=NOW)
    body = LocalAnalyst().answer(given)
    assert parse_body(body_to_answer(body), given) == body


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda a: a["consumption"].update(due=["NOPE"]), "may not hold"),
        (lambda a: a["consumption"].update(due=["COFFEE"]), "may not hold"),
        (lambda a: a["consumption"].update(staples=["NOPE"]), "may not hold"),
        (lambda a: a.update(actions=a["actions"][:2]), "exactly 3"),
        (lambda a: a["churn"].update(risk="EXTREME"), "churn.risk"),
        (lambda a: a.update(confidence=1.5), "confidence"),
        (lambda a: a.update(confidence=True), "confidence"),
        (lambda a: a.update(summary=""), "summary"),
        (lambda a: a.update(summary="x" * 601), "longer"),
        (lambda a: a["actions"][0].update(sku="NOPE"), "actions[0].sku"),
        (lambda a: a["churn"].update(reasons=[]), "reasons"),
        (lambda a: a.pop("consumption"), "consumption"),
    ],
)
def test_invalid_answers_are_rejected(change, message) -> None:
    given = build_input(customer(), purchases(), predictions(), PRODUCTS, as_of=NOW)
    answer = body_to_answer(LocalAnalyst().answer(given))
    change(answer)
    with pytest.raises(AnswerFormatError, match=message.replace("[", r"\[")):
        parse_body(answer, given)


def test_a_reading_without_consent_is_dropped() -> None:
    consenting = build_input(
        customer(profiling=True), purchases(), predictions(), PRODUCTS, as_of=NOW
    )
    answer = body_to_answer(LocalAnalyst().answer(consenting))
    assert answer["socioeconomic"] is not None
    plain = build_input(customer(), purchases(), predictions(), PRODUCTS, as_of=NOW)
    assert parse_body(answer, plain).socioeconomic is None
