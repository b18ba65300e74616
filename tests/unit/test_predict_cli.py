import contextlib
import csv
import io
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest

from domain.demo import generate
from domain.money import format_cents
from schema.cli import main
from schema.predict_cli import CONSUMPTION_COLUMNS, CUSTOMER_COLUMNS

END = datetime(2026, 3, 14, 15, 30, tzinfo=UTC)
AS_OF = "2026-01-13T15:30:00Z"
HOLDOUT_END = "2026-03-14T15:30:00Z"
N_CUSTOMERS = 200
STATUSES = {"ON_TRACK", "DUE_SOON", "OVERDUE", "LAPSED"}


@dataclass(frozen=True)
class DemoCsv:
    path: str
    rows: int
    customers_by_as_of: int


@pytest.fixture(scope="module")
def demo_csv(tmp_path_factory: pytest.TempPathFactory) -> DemoCsv:
    """The demo data as one row per purchase line, amount = the line's amount."""
    data = generate(as_of=END, n_customers=N_CUSTOMERS, seed=42)
    path = tmp_path_factory.mktemp("demo") / "transactions.csv"
    cut = datetime.fromisoformat(AS_OF)
    rows = 0
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["Customer ID", "purchasedAt", "Amount", "SKU", "Quantity"])
        for p in data.purchases:
            at = p.purchased_at.isoformat().replace("+00:00", "Z")
            for line in p.lines:
                writer.writerow(
                    [p.customer_id, at, format_cents(line.amount), line.sku, line.quantity]
                )
                rows += 1
    customers = len({p.customer_id for p in data.purchases if p.purchased_at <= cut})
    return DemoCsv(str(path), rows, customers)


@dataclass(frozen=True)
class Predicted:
    out: Path
    stdout: str
    stderr: str


@pytest.fixture(scope="module")
def predicted(demo_csv: DemoCsv, tmp_path_factory: pytest.TempPathFactory) -> Predicted:
    out = tmp_path_factory.mktemp("predict") / "out"
    stdout, stderr = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        code = main(
            ["predict", "--transactions", demo_csv.path, "--as-of", AS_OF, "--out", str(out)]
        )
    assert code == 0, stderr.getvalue()
    return Predicted(out, stdout.getvalue(), stderr.getvalue())


def read(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        return list(reader.fieldnames or []), list(reader)


def test_predict_writes_customers_csv(predicted: Predicted, demo_csv: DemoCsv) -> None:
    header, rows = read(predicted.out / "customers.csv")

    assert header == list(CUSTOMER_COLUMNS)
    assert len(rows) == demo_csv.customers_by_as_of
    assert len({r["customer_id"] for r in rows}) == len(rows)
    for r in rows:
        assert int(r["frequency"]) >= 0
        assert 0 <= float(r["recency_days"]) <= float(r["t_days"])
        assert 0.0 <= float(r["p_alive"]) <= 1.0
        assert float(r["expected_transactions"]) >= 0
        assert float(r["expected_spend"]) > 0
        assert float(r["clv"]) >= 0
        assert r["churn_risk"] in {"LOW", "MEDIUM", "HIGH"}
    assert {r["churn_risk"] for r in rows} == {"LOW", "MEDIUM", "HIGH"}


def test_predict_writes_consumption_csv(predicted: Predicted, demo_csv: DemoCsv) -> None:
    header, rows = read(predicted.out / "consumption.csv")
    model = json.loads((predicted.out / "model.json").read_text())

    assert header == list(CONSUMPTION_COLUMNS)
    assert len(rows) == model["rows"]["pairs"] > 1000
    assert len({(r["customer_id"], r["sku"]) for r in rows}) == len(rows)
    cut = datetime.fromisoformat(AS_OF)
    for r in rows:
        assert int(r["purchases"]) >= 1
        assert float(r["mean_interval_days"]) > 0
        assert float(r["units_per_day"]) > 0
        last = datetime.fromisoformat(r["last_purchased_at"])
        low, mid, high = (
            datetime.fromisoformat(r[c]) for c in ("window_low", "next_expected_at", "window_high")
        )
        assert last <= cut <= low <= mid <= high
        assert r["next_expected_at"].endswith("Z")
        assert 0.0 <= float(r["probability_within_7d"]) <= 1.0
        assert r["status"] in STATUSES
        assert 0.0 <= float(r["confidence"]) <= 1.0
    assert {r["status"] for r in rows} == STATUSES


def test_predict_writes_model_json(predicted: Predicted, demo_csv: DemoCsv) -> None:
    model = json.loads((predicted.out / "model.json").read_text())

    assert model["as_of"] == AS_OF
    assert model["horizon_days"] == 365
    assert model["annual_discount_rate"] == pytest.approx(0.10)
    bg = model["bgnbd"]
    assert {"r", "alpha", "a", "b", "time_unit", "log_likelihood", "fit_seconds"} <= set(bg)
    assert bg["time_unit"] == "week"
    assert all(bg[k] > 0 for k in ("r", "alpha", "a", "b"))
    gg = model["gamma_gamma"]
    assert {"p", "q", "v", "log_likelihood", "fit_seconds"} <= set(gg)
    assert gg["q"] > 1
    rows = model["rows"]
    assert rows["rows_read"] == rows["rows_valid"] == demo_csv.rows
    assert rows["rows_bad"] == 0
    assert rows["rows_used"] + rows["rows_after_cutoff"] == demo_csv.rows
    assert rows["customers"] == demo_csv.customers_by_as_of
    assert "Wrote" in predicted.stdout
    assert f"{demo_csv.rows:,} rows read" in predicted.stderr


def test_evaluate_prints_a_report_and_json(
    demo_csv: DemoCsv, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["evaluate", "--transactions", demo_csv.path, "--as-of", AS_OF]
    assert main([*args, "--holdout-end", HOLDOUT_END]) == 0
    text = capsys.readouterr().out
    for phrase in (
        "against 60 days",
        f"Customer level: {demo_csv.customers_by_as_of} customers",
        "MAE per customer",
        "RMSE per customer",
        "naive rate",
        "next-date MAE, days",
        "80% window coverage",
        "mean window width, days",
    ):
        assert phrase in text

    assert main([*args, "--holdout-end", HOLDOUT_END, "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    c, k = report["customers"], report["consumption"]
    assert report["as_of"] == AS_OF
    assert report["holdout_end"] == HOLDOUT_END
    assert c["customers"] == demo_csv.customers_by_as_of
    assert c["holdout_days"] == pytest.approx(60)
    assert c["mae"] < c["naive_mae"]
    assert c["rmse"] < c["naive_rmse"]
    assert abs(c["predicted_total"] - c["actual_total"]) < 0.1 * c["actual_total"]
    assert k["mae_days"] <= 0.7 * k["naive_mae_days"]
    assert 0.75 <= k["coverage"] <= 0.85
    assert k["mean_window_days"] > 0
    assert f"{c['mae']:.3f}" in text
    assert f"{k['coverage']:.1%}" in text
    print(text)


# --- bad input --------------------------------------------------------------------------------


def small_csv(extra: str = "", header: str = "customer_id,purchased_at,amount,sku,quantity") -> str:
    """Six customers, each buying milk every few days through January and February 2026."""
    lines = [header]
    for c in range(6):
        for k in range(8):
            day = 1 + k * (3 + c) % 58
            month, dom = (1, day) if day <= 31 else (2, day - 31)
            lines.append(f"cus_{c},2026-{month:02d}-{dom:02d}T10:00:00,{2 + c}.50,MILK,{1 + k % 2}")
    return "\n".join(lines) + "\n" + extra


def run(tmp_path: Path, text: str, *extra: str, command: str = "predict") -> int:
    path = tmp_path / "t.csv"
    path.write_text(text, encoding="utf-8")
    if command == "predict":
        args = ["predict", "--transactions", str(path), "--as-of", "2026-03-01"]
        return main([*args, "--out", str(tmp_path / "out"), *extra])
    args = ["evaluate", "--transactions", str(path), "--as-of", "2026-02-01"]
    return main([*args, "--holdout-end", "2026-03-01", *extra])


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ("cus_9,yesterday,1.00,MILK,1", "line 50: purchased_at 'yesterday' is not an ISO-8601"),
        (
            "cus_9,2026-02-01,1,50,MILK,1",
            "line 50: more fields than the header names (an unquoted comma?)",
        ),
        ("cus_9,2026-02-01,1.5.0,MILK,1", "line 50: amount: '1.5.0' is not an amount of money"),
        ("cus_9,2026-02-01,,MILK,1", "line 50: amount is empty"),
        ("cus_9,2026-02-01,1.00,MILK,0", "line 50: quantity must be at least 1, got 0"),
        ("cus_9,2026-02-01,1.00,MILK,-2", "line 50: quantity must be at least 1, got -2"),
        ("cus_9,2026-02-01,1.00,MILK,1.5", "line 50: quantity must be a whole number"),
        (",2026-02-01,1.00,MILK,1", "line 50: customer_id is empty"),
        ("cus_9,2026-02-01,1.00,,1", "line 50: sku is empty"),
    ],
)
def test_a_bad_row_is_skipped_and_reported_by_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], row: str, message: str
) -> None:
    assert run(tmp_path, small_csv(row + "\n")) == 0
    err = capsys.readouterr().err
    assert message in err
    assert "48 valid, 1 bad rows skipped" in err
    assert "Traceback" not in err
    _, customers = read(tmp_path / "out" / "customers.csv")
    assert len(customers) == 6


def test_a_file_without_a_valid_row_fails(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = "customer_id,purchased_at,amount\n" + "".join(
        f"cus_{i},2026-02-3{i},1.00\n" for i in range(2, 60)
    )
    assert run(tmp_path, text) == 1
    err = capsys.readouterr().err
    assert "line 2: purchased_at '2026-02-32' is not an ISO-8601 date or date-time" in err
    assert "... and 8 more bad rows" in err
    assert "no valid rows to use" in err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("text", "extra", "code", "message"),
    [
        (
            "customer_id,purchased_at,sku\ncus_1,2026-01-01,MILK\n",
            (),
            1,
            "missing required column(s): amount",
        ),
        ("", (), 1, "is empty: expected a header row"),
        (
            "customer_id,purchased_at,amount,quantity\ncus_1,2026-01-01,1.00,1\n",
            (),
            1,
            "a quantity column needs a sku column",
        ),
        (
            "customer_id,purchased_at,amount\ncus_1,2026-04-01,1.00\n",
            (),
            1,
            "no transactions on or before the as-of date",
        ),
        (
            small_csv(),
            ("--discount-rate", "1.5"),
            2,
            "--discount-rate must be at least 0 and below 1",
        ),
        (small_csv(), ("--horizon-days", "0"), 2, "--horizon-days: must be between 1"),
    ],
)
def test_file_and_usage_problems_exit_without_a_traceback(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    text: str,
    extra: tuple[str, ...],
    code: int,
    message: str,
) -> None:
    assert run(tmp_path, text, *extra) == code
    err = capsys.readouterr().err
    assert message in err
    assert "Traceback" not in err


def test_evaluate_refuses_an_as_of_after_the_holdout_end(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "t.csv"
    path.write_text(small_csv(), encoding="utf-8")
    args = ["evaluate", "--transactions", str(path), "--as-of", "2026-03-01"]

    assert main([*args, "--holdout-end", "2026-02-01"]) == 2
    assert "--as-of 2026-03-01T00:00:00Z must be before --holdout-end" in capsys.readouterr().err
    assert main([*args, "--holdout-end", "next week"]) == 2
    assert "not an ISO-8601 date or date-time: 'next week'" in capsys.readouterr().err


def test_missing_file_and_evaluate_on_a_small_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["--as-of", "2026-02-01", "--holdout-end", "2026-03-01"]
    assert main(["evaluate", "--transactions", str(tmp_path / "nope.csv"), *args]) == 1
    assert "cannot read" in capsys.readouterr().err

    assert run(tmp_path, small_csv("cus_1,2026-02-30,1.00,MILK,1\n"), command="evaluate") == 0
    captured = capsys.readouterr()
    assert "line 50: purchased_at '2026-02-30'" in captured.err
    assert "Customer level: 6 customers" in captured.out


def test_without_sku_column_consumption_csv_has_a_header_only(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lines = small_csv().splitlines()
    text = "customer_id,purchased_at,amount,note\n" + "".join(
        ",".join(line.split(",")[:3]) + ",x\n" for line in lines[1:]
    )
    assert run(tmp_path, text) == 0
    captured = capsys.readouterr()
    assert "ignoring column(s) note" in captured.err
    assert "no sku column" in captured.out
    header, rows = read(tmp_path / "out" / "consumption.csv")
    assert header == list(CONSUMPTION_COLUMNS)
    assert rows == []
    _, customers = read(tmp_path / "out" / "customers.csv")
    assert len(customers) == 6
