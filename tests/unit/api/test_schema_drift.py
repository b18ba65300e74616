from pathlib import Path

from schema.export import sdl

COMMITTED = Path(__file__).resolve().parents[3] / "schema" / "schema.graphql"


def test_committed_schema_matches_code() -> None:
    assert COMMITTED.read_text() == sdl(), (
        "schema/schema.graphql is out of date: run `make schema` and commit the result"
    )
