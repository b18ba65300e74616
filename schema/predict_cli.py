"""``omnix predict`` and ``omnix evaluate``: the forecasting models on a CSV of transactions.

The CSV (UTF-8, header row) has the columns ``customer_id, purchased_at, amount`` and optionally
``sku``, ``quantity`` and ``category``; header spellings are normalised as for ``omnix import``
("Customer ID", "customerId"). A row may be a whole basket or one line of it: a customer's rows
of one day make one transaction. ``purchased_at`` is an ISO-8601 date or date-time, read as UTC
when it names no zone; ``amount`` is a decimal in the currency's units ("3.99"), negative for a
refund; ``quantity`` is a whole number of units, 1 when empty. Without a ``sku`` column only the
customer-level models run and ``consumption.csv`` has a header only.

**Bad rows are skipped and reported by line** (at most :data:`MAX_BAD_ROWS_SHOWN` of them, then
a count), as ``omnix import`` does: one malformed line in a year of history should not cost the
user the whole run, and the report says exactly what was left out. The command fails (exit 1)
only when no valid row remains. Problems with the file itself (unreadable, missing columns) exit
1, arguments that make no sense exit 2; neither prints a traceback.

The read report goes to stderr, so the standard output of ``evaluate --json`` is pure JSON.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import sys
from array import array
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from domain.errors import ValidationError
from domain.money import parse_cents
from domain.services.importing import parse_timestamp
from schema.cli import CsvSource, FileProblem, UsageError
from schema.progress import ProgressBar, count_lines

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    from domain.services.forecasting import Evaluation, Forecast, Transactions

REQUIRED_COLUMNS = ("customer_id", "purchased_at", "amount")
OPTIONAL_COLUMNS = ("sku", "quantity", "category")
MAX_BAD_ROWS_SHOWN = 50
MAX_CACHED_AMOUNTS = 100_000
PROGRESS_EVERY = 4096
SECONDS_PER_DAY = 86_400.0

CONSUMPTION_COLUMNS = (
    "customer_id",
    "sku",
    "purchases",
    "mean_interval_days",
    "units_per_day",
    "last_purchased_at",
    "next_expected_at",
    "window_low",
    "window_high",
    "probability_within_7d",
    "status",
    "confidence",
)
CUSTOMER_COLUMNS = (
    "customer_id",
    "frequency",
    "recency_days",
    "t_days",
    "p_alive",
    "expected_transactions",
    "expected_spend",
    "clv",
    "churn_risk",
)


# --- reading --------------------------------------------------------------------------------


@dataclass
class ReadReport:
    path: str
    rows_read: int = 0
    rows_valid: int = 0
    rows_after: int = 0  # valid, but after the last date the command uses
    bad_rows: list[tuple[int, str]] = field(default_factory=list)

    @property
    def nothing_valid(self) -> bool:
        return self.rows_valid == 0

    def summary(self) -> str:
        text = f"{self.path}: {self.rows_read:,} rows read, {self.rows_valid:,} valid"
        if self.bad_rows:
            text += f", {len(self.bad_rows):,} bad rows skipped"
        if self.rows_after:
            text += f", {self.rows_after:,} after the cut-off ignored"
        return text

    def print(self, stream: Any) -> None:
        print(self.summary(), file=stream)
        for line, message in self.bad_rows[:MAX_BAD_ROWS_SHOWN]:
            print(f"  line {line}: {message}", file=stream)
        hidden = len(self.bad_rows) - MAX_BAD_ROWS_SHOWN
        if hidden > 0:
            print(f"  ... and {hidden:,} more bad rows", file=stream)

    def as_json(self) -> dict[str, int]:
        return {
            "rows_read": self.rows_read,
            "rows_valid": self.rows_valid,
            "rows_bad": len(self.bad_rows),
            "rows_after_cutoff": self.rows_after,
        }


@dataclass(frozen=True)
class LoadedTransactions:
    transactions: Transactions
    customer_ids: list[str]  # by customer index
    skus: list[str]  # by sku index
    report: ReadReport


class _RowError(Exception):
    pass


def _timestamp_days(text: str) -> float:
    if not text:
        raise _RowError("purchased_at is empty")
    try:
        return parse_timestamp(text).timestamp() / SECONDS_PER_DAY
    except ValidationError as e:
        raise _RowError(e.message) from e


def _cents(text: str) -> int:
    if not text:
        raise _RowError("amount is empty")
    try:
        return parse_cents(text, field="amount")
    except ValidationError as e:
        raise _RowError(f"amount: {e.message}") from e


def _quantity(text: str) -> int:
    if not text:
        return 1
    try:
        value = int(text)
    except ValueError as e:
        raise _RowError(f"quantity must be a whole number of units, got {text!r}") from e
    if value < 1:
        raise _RowError(f"quantity must be at least 1, got {value}")
    return value


def read_transactions(path: str, *, until: float) -> LoadedTransactions:
    """Read the CSV into flat arrays, keeping the valid rows dated up to ``until`` (days since
    the epoch). Raises :class:`FileProblem` when the file cannot be read, lacks a column or has
    no valid row."""
    import numpy as np

    from domain.services.forecasting import Transactions

    source = CsvSource(path, REQUIRED_COLUMNS, OPTIONAL_COLUMNS)
    if source.ignored:
        print(f"{path}: ignoring column(s) {', '.join(source.ignored)}", file=sys.stderr)
    report = ReadReport(path)
    customers: dict[str, int] = {}
    skus: dict[str, int] = {}
    categories: dict[str, int] = {}
    sku_category = array("q")
    customer, amount, sku, quantity = array("q"), array("q"), array("q"), array("q")
    at = array("d")
    has_sku = has_quantity = has_category = False
    # Prices repeat, and lines of one basket repeat its timestamp: parse each text once.
    amounts: dict[str, int] = {}
    last_text, last_days = "", 0.0
    total = count_lines(path) - 1 if sys.stderr.isatty() else None
    try:
        with ProgressBar(sys.stderr, total=total, label="reading") as bar:
            for line, row in source.rows():
                if report.rows_read == 0:
                    has_sku, has_quantity = "sku" in row, "quantity" in row
                    has_category = "category" in row
                    if has_quantity and not has_sku:
                        raise FileProblem(f"{path}: a quantity column needs a sku column")
                report.rows_read += 1
                if report.rows_read % PROGRESS_EVERY == 0:
                    bar.update(report.rows_read)
                try:
                    if None in row:
                        raise _RowError("more fields than the header names (an unquoted comma?)")
                    customer_id = (row.get("customer_id") or "").strip()
                    if not customer_id:
                        raise _RowError("customer_id is empty")
                    text = (row.get("purchased_at") or "").strip()
                    if text != last_text:
                        last_days, last_text = _timestamp_days(text), text
                    days = last_days
                    amount_text = row.get("amount") or ""
                    cents = amounts.get(amount_text)
                    if cents is None:
                        cents = _cents(amount_text.strip())
                        if len(amounts) < MAX_CACHED_AMOUNTS:
                            amounts[amount_text] = cents
                    sku_id = ""
                    units = 1
                    if has_sku:
                        sku_id = (row.get("sku") or "").strip()
                        if not sku_id:
                            raise _RowError("sku is empty")
                        if has_quantity:
                            units = _quantity((row.get("quantity") or "").strip())
                except _RowError as e:
                    report.bad_rows.append((line, str(e)))
                    continue
                report.rows_valid += 1
                if days > until:
                    report.rows_after += 1
                    continue
                index = customers.get(customer_id)
                if index is None:
                    index = customers[customer_id] = len(customers)
                customer.append(index)
                at.append(days)
                amount.append(cents)
                if has_sku:
                    s = skus.get(sku_id)
                    if s is None:
                        s = skus[sku_id] = len(skus)
                        name = (row.get("category") or "").strip() if has_category else ""
                        sku_category.append(categories.setdefault(name, len(categories)))
                    sku.append(s)
                    quantity.append(units)
            bar.update(report.rows_read)
    finally:
        source.close()

    if report.nothing_valid:
        report.print(sys.stderr)
        raise FileProblem(f"{path}: no valid rows to use")

    def ints(values: array[int]) -> npt.NDArray[np.int64]:
        return np.frombuffer(values, dtype=np.int64) if len(values) else np.zeros(0, np.int64)

    transactions = Transactions(
        customer=ints(customer),
        purchased_at=np.frombuffer(at, dtype=np.float64) if len(at) else np.zeros(0),
        amount=ints(amount),
        sku=ints(sku) if has_sku else None,
        quantity=ints(quantity) if has_sku else None,
        sku_category=ints(sku_category) if has_sku else None,
    )
    return LoadedTransactions(transactions, list(customers), list(skus), report)


# --- formatting -----------------------------------------------------------------------------


def _days(moment: datetime) -> float:
    return moment.timestamp() / SECONDS_PER_DAY


def _iso(days: float) -> str:
    return (
        datetime.fromtimestamp(round(days * SECONDS_PER_DAY), UTC)
        .isoformat()
        .replace("+00:00", "Z")
    )


def _iso_column(days: npt.NDArray[np.float64]) -> list[str]:
    import numpy as np

    out = np.full(len(days), "", dtype=object)
    known = np.isfinite(days)
    seconds = np.round(days[known] * SECONDS_PER_DAY).astype("datetime64[s]")
    out[known] = np.char.add(np.datetime_as_string(seconds, unit="s"), "Z")
    return [str(v) for v in out.tolist()]


def _fixed_column(values: npt.NDArray[Any], decimals: int) -> list[str]:
    import numpy as np

    numbers = np.asarray(values, dtype=np.float64)
    text = np.char.mod(f"%.{decimals}f", numbers)
    return [str(v) for v in np.where(np.isfinite(numbers), text, "").tolist()]


def _json_number(value: float) -> float | None:
    return value if math.isfinite(value) else None


# --- predict --------------------------------------------------------------------------------


def _write_csv(path: Path, header: tuple[str, ...], columns: list[list[str]]) -> int:
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(zip(*columns, strict=True))
    return len(columns[0]) if columns else 0


def _write_consumption(path: Path, result: Forecast, data: LoadedTransactions) -> int:
    from domain.analytics.consumption import Status

    if result.consumption is None:
        return _write_csv(path, CONSUMPTION_COLUMNS, [[] for _ in CONSUMPTION_COLUMNS])
    c = result.consumption
    cycles = c.cycles
    status_names = {int(s): s.name for s in Status}
    return _write_csv(
        path,
        CONSUMPTION_COLUMNS,
        [
            [data.customer_ids[i] for i in c.customer.tolist()],
            [data.skus[i] for i in c.sku.tolist()],
            [str(n) for n in cycles.purchases.tolist()],
            _fixed_column(cycles.mean_interval_days, 2),
            _fixed_column(cycles.units_per_day, 4),
            _iso_column(cycles.last_purchased_at),
            _iso_column(cycles.next_expected_at),
            _iso_column(cycles.window_low),
            _iso_column(cycles.window_high),
            _fixed_column(c.probability_within_7d, 4),
            [status_names[s] for s in cycles.status.tolist()],
            _fixed_column(cycles.confidence, 3),
        ],
    )


def _write_customers(path: Path, result: Forecast, data: LoadedTransactions) -> int:
    from domain.analytics.btyd import CHURN_RISK_BANDS

    c = result.customers
    return _write_csv(
        path,
        CUSTOMER_COLUMNS,
        [
            [data.customer_ids[i] for i in c.customer.tolist()],
            [str(n) for n in c.frequency.tolist()],
            _fixed_column(c.recency_days, 0),
            _fixed_column(c.t_days, 2),
            _fixed_column(c.p_alive, 4),
            _fixed_column(c.expected_transactions, 3),
            _fixed_column(c.expected_spend / 100.0, 2),
            _fixed_column(c.clv / 100.0, 2),
            [CHURN_RISK_BANDS[k].value for k in c.churn_risk.tolist()],
        ],
    )


def _model_json(result: Forecast, data: LoadedTransactions) -> dict[str, Any]:
    bg, gg = result.bgnbd, result.gamma_gamma
    unit = bg.params.time_unit_days
    return {
        "as_of": _iso(result.as_of),
        "horizon_days": result.horizon_days,
        "annual_discount_rate": result.annual_discount_rate,
        "bgnbd": {
            "r": bg.params.r,
            "alpha": bg.params.alpha,
            "a": bg.params.a,
            "b": bg.params.b,
            "time_unit": "week" if unit == 7.0 else f"{unit:g} days",
            "time_unit_days": unit,
            "log_likelihood": bg.log_likelihood,
            "converged": bg.converged,
            "iterations": bg.iterations,
            "customers": bg.n_customers,
            "fit_seconds": result.seconds.bgnbd,
        },
        "gamma_gamma": {
            "p": gg.params.p,
            "q": gg.params.q,
            "v": gg.params.v / 100.0,
            "money_unit": "currency units of the amount column (v is a scale of spend)",
            "log_likelihood": gg.log_likelihood,
            "converged": gg.converged,
            "iterations": gg.iterations,
            "customers": gg.n_customers,
            "fit_seconds": result.seconds.gamma_gamma,
        },
        "consumption": None
        if result.consumption is None
        else {"pairs": len(result.consumption), "fit_seconds": result.seconds.consumption},
        "predict_seconds": result.seconds.predictions,
        "rows": {
            **data.report.as_json(),
            "rows_used": result.rows.used,
            "customers": result.rows.customers,
            "transactions": result.rows.transactions,
            "skus": result.rows.skus,
            "pairs": result.rows.pairs,
        },
    }


def _discount_rate(value: float) -> float:
    if not 0.0 <= value < 1.0:
        raise UsageError(f"--discount-rate must be at least 0 and below 1, got {value:g}")
    return value


def predict(args: argparse.Namespace) -> int:
    """``omnix predict``: write consumption.csv, customers.csv and model.json into --out."""
    from domain.services.forecasting import forecast

    as_of = _days(args.as_of)
    rate = _discount_rate(args.discount_rate)
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out} exists and is not a directory")
    try:
        data = read_transactions(args.transactions, until=as_of)
    except FileProblem as e:
        print(f"omnix: {e}", file=sys.stderr)
        return 1
    data.report.print(sys.stderr)
    try:
        result = forecast(
            data.transactions,
            as_of=as_of,
            horizon_days=float(args.horizon_days),
            annual_discount_rate=rate,
        )
    except (ValueError, ArithmeticError) as e:
        print(f"omnix: cannot fit the models to {args.transactions}: {e}", file=sys.stderr)
        return 1
    out.mkdir(parents=True, exist_ok=True)
    pairs = _write_consumption(out / "consumption.csv", result, data)
    customers = _write_customers(out / "customers.csv", result, data)
    model = _model_json(result, data)
    (out / "model.json").write_text(json.dumps(model, indent=2) + "\n", encoding="utf-8")
    bg = result.bgnbd.params
    print(
        f"Forecast at {_iso(as_of)} over {args.horizon_days:,} days from "
        f"{result.rows.used:,} rows: {customers:,} customers, {pairs:,} (customer, sku) pairs"
    )
    print(f"  BG/NBD (weeks): r={bg.r:.4g} alpha={bg.alpha:.4g} a={bg.a:.4g} b={bg.b:.4g}")
    if result.consumption is None:
        print("  no sku column: consumption.csv has a header only")
    print(f"Wrote {out / 'consumption.csv'}, {out / 'customers.csv'}, {out / 'model.json'}")
    return 0


# --- evaluate -------------------------------------------------------------------------------


def _evaluation_json(result: Evaluation, report: ReadReport) -> dict[str, Any]:
    customers = {k: _json_number(float(v)) for k, v in asdict(result.customers).items()}
    customers["customers"] = result.customers.customers
    customers["actual_total"] = result.customers.actual_total
    consumption: dict[str, Any] | None = None
    if result.consumption is not None:
        consumption = {k: _json_number(float(v)) for k, v in asdict(result.consumption).items()}
        consumption["pairs"] = result.consumption.pairs
        consumption["mae_ratio"] = _json_number(result.consumption.mae_ratio)
    return {
        "as_of": _iso(result.as_of),
        "holdout_end": _iso(result.holdout_end),
        "rows": report.as_json(),
        "customers": customers,
        "consumption": consumption,
    }


def _table(rows: list[tuple[str, ...]]) -> str:
    widths = [max(len(r[i]) for r in rows if i < len(r)) for i in range(max(map(len, rows)))]
    lines = []
    for r in rows:
        cells = [r[0].ljust(widths[0])] + [c.rjust(widths[i + 1]) for i, c in enumerate(r[1:])]
        lines.append("  " + "  ".join(cells).rstrip())
    return "\n".join(lines)


def _evaluation_text(result: Evaluation, path: str) -> str:
    c = result.customers
    parts = [
        f"Accuracy of forecasts made at {_iso(result.as_of)} against {c.holdout_days:g} days "
        f"to {_iso(result.holdout_end)} ({path})",
        "",
        f"Customer level: {c.customers:,} customers, transactions in the holdout",
        _table(
            [
                ("", "model", "naive rate"),
                (
                    f"total (actual {c.actual_total:,})",
                    f"{c.predicted_total:,.1f}",
                    f"{c.naive_predicted_total:,.1f}",
                ),
                ("MAE per customer", f"{c.mae:.3f}", f"{c.naive_mae:.3f}"),
                ("RMSE per customer", f"{c.rmse:.3f}", f"{c.naive_rmse:.3f}"),
            ]
        ),
        "  naive rate: each customer's repeat transactions per day so far x holdout days",
        "",
    ]
    k = result.consumption
    if k is None:
        parts.append("Consumption: no sku column, not evaluated")
    elif k.pairs == 0:
        parts.append("Consumption: no (customer, sku) pair bought twice before and again after")
    else:
        parts += [
            f"Consumption: {k.pairs:,} (customer, sku) pairs bought again in the holdout",
            _table(
                [
                    ("", "model", "naive", "naive clipped"),
                    (
                        "next-date MAE, days",
                        f"{k.mae_days:.2f}",
                        f"{k.naive_mae_days:.2f}",
                        f"{k.clipped_naive_mae_days:.2f}",
                    ),
                    ("MAE / naive MAE", f"{k.mae_ratio:.3f}"),
                    ("80% window coverage", f"{k.coverage:.1%}"),
                    ("mean window width, days", f"{k.mean_window_days:.1f}"),
                ]
            ),
            "  naive: last purchase + the pair's mean interval; clipped: such dates already",
            "  past moved to the as-of date",
        ]
    return "\n".join(parts)


def evaluate(args: argparse.Namespace) -> int:
    """``omnix evaluate``: score forecasts made at --as-of against what happened up to
    --holdout-end, as a table or, with --json, as JSON."""
    from domain.services.forecasting import evaluate_forecasts

    as_of, holdout_end = _days(args.as_of), _days(args.holdout_end)
    if not holdout_end > as_of:
        raise UsageError(f"--as-of {_iso(as_of)} must be before --holdout-end {_iso(holdout_end)}")
    try:
        data = read_transactions(args.transactions, until=holdout_end)
    except FileProblem as e:
        print(f"omnix: {e}", file=sys.stderr)
        return 1
    data.report.print(sys.stderr)
    try:
        result = evaluate_forecasts(data.transactions, as_of=as_of, holdout_end=holdout_end)
    except (ValueError, ArithmeticError) as e:
        print(f"omnix: cannot fit the models to {args.transactions}: {e}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(_evaluation_json(result, data.report), indent=2))
    else:
        print(_evaluation_text(result, args.transactions))
    return 0
