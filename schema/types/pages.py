from __future__ import annotations

from typing import Any

import strawberry

from domain.pagination import Page


@strawberry.type(description="Where a page ends; pass endCursor as `after` for the next page.")
class PageInfo:
    end_cursor: str | None
    has_next_page: bool

    @classmethod
    def from_page(cls, page: Page[Any]) -> PageInfo:
        return cls(end_cursor=page.end_cursor, has_next_page=page.has_next_page)
