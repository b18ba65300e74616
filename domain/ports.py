


class Analyst(Protocol):
    """Reads one customer's analysis input (pseudonymous ids only) and answers the structured
    analysis. Raises AnalystError, with the reason and whatever the failed call consumed, when
    it cannot answer in time or answers something invalid."""

    @property
    def model(self) -> str: ...

    @property
    def prompt_version(self) -> str: ...

    async def analyse(self, given: AnalysisInput) -> AnalystAnswer: ...


class AiUsageStore(Protocol):
    """Every analyst call (and cache hit) with its tokens, cost and latency."""

    async def record(self, usage: AiUsage) -> None: ...

    async def totals(
        self, *, since: datetime | None, until: datetime | None
    ) -> list[AiUsageGroup]:
        """Totals per (UTC day, model) of the calls with ``since <= occurred_at < until``."""
        ...
