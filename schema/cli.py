"""The ``omnix`` command: serve the API, seed demo data, import CSV files, forecast from them.

Heavy modules (the app, uvicorn, numpy) are imported inside the commands so ``omnix --help``
answers at once."""

from __future__ import annotations

import argparse
import asyncio
import csv
import os
import re
import sys
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Protocol, TextIO

from domain.errors import DomainError, ValidationError
from schema.progress import ProgressBar, count_lines
from schema.segment_cli import add_segment_parser
from schema.settings import Settings, SettingsError

if TYPE_CHECKING:
    from domain.demo.seeding import SeedReport
    from domain.services.predictions import RecomputeReport
    from domain.services.recommendations import FitReport

MAX_BAD_ROWS_SHOWN = 50
DEFAULT_DEMO_CUSTOMERS = 500
FALSE_WORDS = {"0", "false", "no", "off"}
TRUE_WORDS = {"1", "true", "yes", "on", ""}


class UsageError(Exception):
    """Arguments that parse but make no sense; exit code 2."""


class FileProblem(Exception):
    """An input file that cannot be read as a CSV of the expected shape; exit code 1."""


# --- helpers ------------------------------------------------------------------------------


def _whole_number(low: int, high: int, what: str) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError as e:
            raise argparse.ArgumentTypeError(f"not {what}: {text!r}") from e
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"must be between {low} and {high}, got {value}")
        return value

    return parse


_port = _whole_number(0, 65535, "a port number")
_positive = _whole_number(1, 1_000_000, "a whole number")


def _as_of(text: str) -> datetime:
    from domain.services.importing import parse_timestamp

    try:
        return parse_timestamp(text)
    except ValidationError as e:
        raise argparse.ArgumentTypeError(f"not an ISO-8601 date or date-time: {text!r}") from e


def _error(message: str) -> None:
    print(f"omnix: {message}", file=sys.stderr)


def seed_demo_enabled(environ: Mapping[str, str] | None = None) -> bool:
    """OMNIX_SEED_DEMO: seed demo data into an empty store on ``serve`` (default true)."""
    value = (os.environ if environ is None else environ).get("OMNIX_SEED_DEMO", "")
    word = value.strip().lower()
    if word in FALSE_WORDS:
        return False
    if word in TRUE_WORDS:
        return True
    raise SettingsError(f"OMNIX_SEED_DEMO must be true or false, got {value!r}")


def _default_as_of() -> datetime:
    """The current hour: seeding again within it reproduces the same data, so adds nothing."""
    return datetime.now(UTC).replace(minute=0, second=0, microsecond=0)


def _seed_progress(stream: TextIO) -> tuple[ProgressBar, Callable[[int, int], None]]:
    bar = ProgressBar(stream, total=None, label="seeding", unit="purchases")
    return bar, lambda done, total: bar.update(done, total)


async def ensure_demo_data(
    settings: Settings,
    *,
    environ: Mapping[str, str] | None = None,
    n_customers: int = DEFAULT_DEMO_CUSTOMERS,
    on_progress: Callable[[int, int], None] | None = None,
) -> SeedReport | None:
    """Seed the demo data set when the store holds no customers, products or purchases and
    OMNIX_SEED_DEMO is not false; returns what was written, or None when nothing was."""
    if not seed_demo_enabled(environ):
        return None
    from domain.demo import seed
    from schema.app import open_container

    async with open_container(settings) as container:
        # One at a time, stopping at the first non-empty store: counting purchases reads the
        # whole table on DynamoDB, and a populated store has customers.
        for store in (
            container.customer_store,
            container.product_store,
            container.purchase_store,
        ):
            if await store.count():
                return None
        return await seed(
            container.customer_store,
            container.product_store,
            container.purchase_store,
            as_of=_default_as_of(),
            n_customers=n_customers,
            on_progress=on_progress,
        )


# --- serve ----------------------------------------------------------------------------------


def _serve(args: argparse.Namespace, settings: Settings) -> int:
    import uvicorn

    from schema.app import create_app

    host: str = args.host or settings.host
    port: int = settings.port if args.port is None else args.port
    bar, progress = _seed_progress(sys.stderr)
    with bar:
        report = asyncio.run(ensure_demo_data(settings, on_progress=progress))
    if report is not None:
        print(f"Seeded demo data into an empty store: {report.summary()}")
    app = create_app(settings)
    shown = "localhost" if host in {"0.0.0.0", "::", ""} else host
    shown = f"[{shown}]" if ":" in shown else shown
    print(f"OMNIX GraphQL API: http://{shown}:{port}/graphql  (Ctrl+C to stop)", flush=True)
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level=settings.log_level.lower(),
        lifespan="on",
        proxy_headers=True,
        server_header=False,
    )
    try:
        uvicorn.Server(config).run()
    except SystemExit as e:  # uvicorn exits when it cannot bind or start the app
        return e.code if isinstance(e.code, int) else 1
    except KeyboardInterrupt:  # uvicorn re-raises Ctrl+C after a graceful shutdown
        pass
    return 0


# --- seed -----------------------------------------------------------------------------------


def _seed(args: argparse.Namespace, settings: Settings) -> int:
    as_of: datetime = args.as_of or _default_as_of()
    if as_of > datetime.now(UTC) + timedelta(minutes=5):
        raise UsageError(f"--as-of {as_of.isoformat()} is in the future")
    print(
        f"Seeding {args.customers:,} demo customers with a year of purchases up to "
        f"{as_of.isoformat()} (seed {args.seed}) into {_store_label(settings)}"
    )
    bar, progress = _seed_progress(sys.stderr)
    with bar:
        report = asyncio.run(_run_seed(settings, as_of, args.customers, args.seed, progress))
    print(report.summary())
    return 0


async def _run_seed(
    settings: Settings,
    as_of: datetime,
    customers: int,
    seed_value: int,
    progress: Callable[[int, int], None],
) -> SeedReport:
    from domain.demo import seed
    from schema.app import open_container

    async with open_container(settings) as container:
        return await seed(
            container.customer_store,
            container.product_store,
            container.purchase_store,
            as_of=as_of,
            n_customers=customers,
            seed=seed_value,
            on_progress=progress,
        )


# --- recompute ------------------------------------------------------------------------------


def _recompute(args: argparse.Namespace, settings: Settings) -> int:
    bars: dict[str, ProgressBar] = {}

    def progress(stage: str, done: int, total: int) -> None:
        if stage not in bars:
            for bar in bars.values():
                bar.close()
            unit = {"reading": "customers", "computing": "customers", "saving": "customers"}
            bars[stage] = ProgressBar(
                sys.stderr, total=total or None, label=stage, unit=unit[stage]
            )
        bars[stage].update(done, total or None)

    try:
        report, fit = asyncio.run(_run_recompute(settings, progress))
    finally:
        for bar in bars.values():
            bar.close()
    if report is None:
        _error(f"the store at {settings.store_url or settings.sqlite_path} keeps no predictions")
        return 1
    if report.model_version is None:
        _error(f"nothing recomputed: {report.skipped_reason}")
        return 1
    print(
        f"Recomputed {report.predicted:,} of {report.customers:,} customers "
        f"({report.patterns:,} consumption patterns, {report.profiles:,} profiles) from "
        f"{report.purchases:,} purchases / {report.lines:,} lines; model {report.model_version}"
    )
    print(
        f"read {report.read_seconds:.1f} s, computed {report.compute_seconds:.1f} s, "
        f"saved {report.save_seconds:.1f} s"
    )
    if fit is not None:
        print(
            f"Recommendation model {fit.model_version}: {fit.skus:,} skus, {fit.pairs:,} "
            f"bought-together pairs from {fit.baskets:,} baskets in {fit.seconds:.1f} s"
        )
    return 0


async def _run_recompute(
    settings: Settings, progress: Callable[[str, int, int], None]
) -> tuple[RecomputeReport | None, FitReport | None]:
    from schema.app import open_container

    async with open_container(settings) as container:
        if container.prediction_updater is not None:
            # Also moves the updater's checkpoint past what the refit has seen.
            report = await container.prediction_updater.recompute(progress=progress)
        elif container.predictions is not None:
            # An external event log (Kinesis): the worker's updates need no checkpoint moved.
            report = await container.predictions.recompute(progress=progress)
        else:
            return None, None
        recommendations = container.recommendations
        return report, recommendations.last_fit if recommendations is not None else None


# --- import ---------------------------------------------------------------------------------

_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
_NOT_WORD = re.compile(r"[^a-z0-9]+")


def normalise_header(name: str) -> str:
    """ "Customer ID", "customerId" and "customer-id" all become "customer_id"."""
    return _NOT_WORD.sub("_", _CAMEL.sub("_", name.strip()).lower()).strip("_")


class _Report(Protocol):
    bad_rows: list[tuple[int, str]]

    @property
    def nothing_valid(self) -> bool: ...

    def summary(self) -> str: ...


class CsvSource:
    """A CSV file read lazily as (line number, row) pairs with normalised column names.
    The header is read and checked on construction, before anything is written."""

    def __init__(self, path: str, required: Sequence[str], optional: Sequence[str]) -> None:
        self.path = path
        self.ignored: list[str] = []
        try:
            self._file = open(path, newline="", encoding="utf-8-sig")  # noqa: SIM115
        except OSError as e:
            raise FileProblem(f"cannot read {path}: {e.strerror or e}") from e
        try:
            self._reader = csv.DictReader(self._file)
            header = self._reader.fieldnames
            if not header:
                raise FileProblem(f"{path} is empty: expected a header row")
            columns = [normalise_header(h) for h in header]
            duplicates = sorted({c for c in columns if columns.count(c) > 1 and c})
            if duplicates:
                raise FileProblem(f"{path}: column(s) given twice: {', '.join(duplicates)}")
            missing = [c for c in required if c not in columns]
            if missing:
                raise FileProblem(
                    f"{path}: missing required column(s): {', '.join(missing)} "
                    f"(found: {', '.join(columns)})"
                )
            self._reader.fieldnames = columns
            self.ignored = [c for c in columns if c not in {*required, *optional}]
        except (UnicodeDecodeError, csv.Error) as e:
            self._file.close()
            raise FileProblem(f"cannot read {path}: {e}") from e
        except FileProblem:
            self._file.close()
            raise

    def rows(self) -> Iterator[tuple[int, dict[str, str | None]]]:
        try:
            for row in self._reader:
                yield self._reader.line_num, row
        except (UnicodeDecodeError, csv.Error) as e:
            raise FileProblem(
                f"cannot read {self.path} after line {self._reader.line_num}: {e}"
            ) from e

    def close(self) -> None:
        self._file.close()


async def _import_one(
    source: CsvSource,
    run: Callable[..., Awaitable[_Report]],
    label: str,
) -> int:
    if source.ignored:
        print(f"{source.path}: ignoring column(s) {', '.join(source.ignored)}", file=sys.stderr)
    total = count_lines(source.path) - 1 if sys.stderr.isatty() else None
    try:
        with ProgressBar(sys.stderr, total=total, label=label) as bar:
            report = await run(source.rows(), on_progress=bar.update)
    except FileProblem as e:
        _error(f"{e}; earlier chunks may have been imported, and importing again is safe")
        return 1
    print(f"{source.path}: {report.summary()}")
    for line, message in report.bad_rows[:MAX_BAD_ROWS_SHOWN]:
        print(f"  line {line}: {message}")
    hidden = len(report.bad_rows) - MAX_BAD_ROWS_SHOWN
    if hidden > 0:
        print(f"  ... and {hidden:,} more bad rows")
    return 1 if report.nothing_valid else 0


async def _run_import(settings: Settings, sources: list[tuple[str, CsvSource]]) -> int:
    from schema.app import open_container

    code = 0
    async with open_container(settings) as container:
        importer = container.importer
        for kind, source in sources:
            run = importer.import_products if kind == "products" else importer.import_rows
            code = max(code, await _import_one(source, run, f"importing {kind}"))
    return code


def _import(args: argparse.Namespace, settings: Settings) -> int:
    from domain.services.importing import (
        OPTIONAL_PRODUCT_COLUMNS,
        OPTIONAL_TRANSACTION_COLUMNS,
        PRODUCT_COLUMNS,
        TRANSACTION_COLUMNS,
    )

    if not (args.products or args.transactions):
        raise UsageError("import needs --transactions FILE and/or --products FILE")
    sources: list[tuple[str, CsvSource]] = []
    try:
        # Products first, so a transaction file can use skus its companion catalogue adds.
        if args.products:
            source = CsvSource(args.products, PRODUCT_COLUMNS, OPTIONAL_PRODUCT_COLUMNS)
            sources.append(("products", source))
        if args.transactions:
            source = CsvSource(args.transactions, TRANSACTION_COLUMNS, OPTIONAL_TRANSACTION_COLUMNS)
            sources.append(("transactions", source))
        return asyncio.run(_run_import(settings, sources))
    except FileProblem as e:
        _error(str(e))
        return 1
    finally:
        for _, source in sources:
            source.close()


# --- init -----------------------------------------------------------------------------------


def _store_label(settings: Settings) -> str:
    url = settings.store_url or "sqlite://"
    return str(settings.sqlite_path) if url.startswith("sqlite:") else url


def _init(args: argparse.Namespace, settings: Settings) -> int:
    from schema.app import init_event_log, init_store

    print(f"Preparing the store {_store_label(settings)}")
    for line in asyncio.run(init_store(settings)):
        print(f"  {line}")
    event_log = asyncio.run(init_event_log(settings))
    if event_log:
        print(f"Preparing the event log {settings.events_url}")
        for line in event_log:
            print(f"  {line}")
    return 0


# --- predict, evaluate ----------------------------------------------------------------------


def _predict(args: argparse.Namespace, settings: Settings) -> int:
    from schema.predict_cli import predict

    return predict(args)


def _evaluate(args: argparse.Namespace, settings: Settings) -> int:
    from schema.predict_cli import evaluate

    return evaluate(args)


def _evaluate_recommendations(args: argparse.Namespace, settings: Settings) -> int:
    from schema.recommend_cli import evaluate_recommendations

    return evaluate_recommendations(args, settings)


# --- worker ---------------------------------------------------------------------------------


def _worker(args: argparse.Namespace, settings: Settings) -> int:
    from schema.worker import run_worker

    return asyncio.run(run_worker(settings, consumer=args.consumer))


# --- entry point ----------------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="omnix",
        description="OMNIX customer analytics: GraphQL API, demo data and CSV import. "
        "Configured by OMNIX_* environment variables (OMNIX_DATA_DIR, OMNIX_STORE, OMNIX_PORT...).",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    serve = commands.add_parser(
        "serve",
        help="serve the GraphQL API (seeds demo data into an empty store first)",
        description="Serve GraphQL on http://HOST:PORT/graphql. When the store is empty and "
        "OMNIX_SEED_DEMO is not false, demo data is seeded first.",
    )
    serve.add_argument("--host", help="interface to bind (default OMNIX_HOST or 127.0.0.1)")
    serve.add_argument("--port", type=_port, help="port to listen on (default OMNIX_PORT or 8000)")
    serve.set_defaults(run=_serve)

    init = commands.add_parser(
        "init",
        help="create or update the store's tables (DynamoDB) or schema (SQLite)",
        description="Make OMNIX_STORE ready: on DynamoDB, create the tables that are missing "
        "(on-demand billing), add missing indexes, enable TTL and point-in-time recovery; on "
        "SQLite, run the schema migrations. Prints what it did; running it again changes "
        "nothing.",
    )
    init.set_defaults(run=_init)

    worker = commands.add_parser(
        "worker",
        help="process the event stream (OMNIX_EVENTS=kinesis://): bus fan-out, predictions, "
        "segments, anomalies and the sweeps",
        description="Read every shard of the Kinesis stream named by OMNIX_EVENTS as one "
        "consumer, checkpointed in DynamoDB: publish each event on OMNIX_BUS, re-predict and "
        "re-segment the customers who bought, run the anomaly detectors, and run the periodic "
        "anomaly and segment sweeps. Run one per deployment. Runs until SIGTERM or Ctrl+C, "
        "then finishes the batch under way and saves its checkpoint.",
    )
    worker.add_argument(
        "--consumer",
        default="bus-fanout",
        help="consumer name the checkpoints are kept under (default bus-fanout)",
    )
    worker.set_defaults(run=_worker)

    seed = commands.add_parser(
        "seed",
        help="write demo customers and a year of their purchases",
        description="Write the demo catalogue, customers and a year of baskets. Deterministic "
        "for the same --customers, --seed and --as-of, so running it again adds nothing.",
    )
    seed.add_argument(
        "--customers",
        type=_positive,
        default=DEFAULT_DEMO_CUSTOMERS,
        help=f"number of customers (default {DEFAULT_DEMO_CUSTOMERS})",
    )
    seed.add_argument("--seed", type=int, default=42, help="random seed (default 42)")
    seed.add_argument(
        "--as-of",
        type=_as_of,
        help="end of the simulated year, ISO-8601 date or date-time (default: this hour, UTC)",
    )
    seed.set_defaults(run=_seed)

    imp = commands.add_parser(
        "import",
        help="import purchase history and/or a product catalogue from CSV",
        description="Import CSV files (UTF-8, header row). Transactions: customer_id, "
        "purchased_at, sku, quantity[, transaction_id, unit_price, discount, store_id]. "
        "Products: sku, name, category, brand, price_tier, pack_size, unit, price[, tags "
        "separated by |]. Bad rows are reported by line; their baskets are skipped and the "
        "rest is imported. Importing the same file again adds nothing.",
    )
    imp.add_argument("--transactions", metavar="FILE", help="CSV of purchase lines")
    imp.add_argument("--products", metavar="FILE", help="CSV of products")
    imp.set_defaults(run=_import)

    predict = commands.add_parser(
        "predict",
        help="forecast customers and consumption cycles from a CSV of transactions",
        description="Fit the models on the rows of --transactions up to --as-of and write "
        "DIR/consumption.csv, DIR/customers.csv and DIR/model.json. The CSV has the columns "
        "customer_id, purchased_at, amount[, sku, quantity, category]; bad rows are reported "
        "by line and skipped.",
    )
    predict.add_argument("--transactions", metavar="FILE", required=True, help="CSV of purchases")
    predict.add_argument(
        "--as-of", type=_as_of, required=True, help="forecast date, ISO-8601 (a date is 00:00 UTC)"
    )
    predict.add_argument(
        "--horizon-days",
        type=_positive,
        default=365,
        metavar="N",
        help="horizon of expected transactions and CLV (default 365)",
    )
    predict.add_argument(
        "--discount-rate",
        type=float,
        default=0.10,
        metavar="R",
        help="annual discount rate of CLV (default 0.10)",
    )
    predict.add_argument("--out", metavar="DIR", required=True, help="directory to write into")
    predict.set_defaults(run=_predict)

    recompute = commands.add_parser(
        "recompute",
        help="refit the prediction and recommendation models on every customer and store them",
        description="Refit consumption cycles, BG/NBD and Gamma-Gamma forecasts and profiles on "
        "the whole store, store the new model version and every customer's predictions, and "
        "refit the recommendation model (co-occurrence, content, context) on the same data. "
        "Purchases recorded afterwards update their customers incrementally (omnix serve).",
    )
    recompute.set_defaults(run=_recompute)

    add_segment_parser(commands)

    evaluate = commands.add_parser(
        "evaluate",
        help="check forecast accuracy on a CSV of transactions",
        description="Forecast at --as-of from the rows up to it and compare with what happened "
        "up to --holdout-end, beside naive baselines.",
    )
    evaluate.add_argument("--transactions", metavar="FILE", required=True, help="CSV of purchases")
    evaluate.add_argument("--as-of", type=_as_of, required=True, help="forecast date, ISO-8601")
    evaluate.add_argument(
        "--holdout-end", type=_as_of, required=True, help="end of the holdout, ISO-8601"
    )
    evaluate.add_argument("--json", action="store_true", help="print the report as JSON")
    evaluate.set_defaults(run=_evaluate)

    recommendations = commands.add_parser(
        "evaluate-recommendations",
        help="replay the recommendations at a past date against what was bought next",
        description="Fit everything on the purchases up to --as-of (the store's, or a demo year "
        "generated in memory), recommend --k items to every customer at that moment and score "
        "them against the next --days days' purchases: precision@k and recall@k beside a "
        "popularity baseline, and recall on items new to the customer.",
    )
    recommendations.add_argument(
        "--as-of", type=_as_of, required=True, help="the cut, ISO-8601 (a date is 00:00 UTC)"
    )
    recommendations.add_argument(
        "--days", type=_positive, default=30, metavar="N", help="window after the cut (30)"
    )
    recommendations.add_argument(
        "--k", type=_whole_number(1, 50, "a whole number"), default=10, help="list length (10)"
    )
    recommendations.add_argument(
        "--demo-customers",
        type=_positive,
        metavar="N",
        help="evaluate on a demo year of N customers generated in memory, not on the store",
    )
    recommendations.add_argument("--json", action="store_true", help="print the report as JSON")
    recommendations.add_argument(
        "--check", action="store_true", help="exit 1 when recall@k is under 1.5 x the baseline's"
    )
    recommendations.set_defaults(run=_evaluate_recommendations)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``omnix`` console script; returns the process exit code:
    0 success, 1 failed (unreadable input, nothing valid, store errors), 2 usage or
    configuration errors."""
    parser = _parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:  # argparse has printed usage (2) or help (0)
        return e.code if isinstance(e.code, int) else 2
    if args.command is None:
        parser.print_help(sys.stderr)
        return 2
    try:
        settings = Settings.from_env()
        code: int = args.run(args, settings)
        return code
    except SettingsError as e:
        _error(f"configuration error: {e}")
        return 2
    except UsageError as e:
        _error(str(e))
        return 2
    except DomainError as e:
        _error(e.message)
        return 1
    except OSError as e:  # e.g. a data directory that cannot be created or written
        _error(str(e))
        return 1
    except KeyboardInterrupt:
        _error("interrupted")
        return 130


if __name__ == "__main__":
    sys.exit(main())
