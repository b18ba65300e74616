import io
from pathlib import Path

import pytest

from schema.cli import ensure_demo_data, main, normalise_header, seed_demo_enabled
from schema.progress import ProgressBar, count_lines
from schema.settings import Settings, SettingsError

PRODUCTS_CSV = """\ufeffSKU,Name,Category,Brand,Price Tier,Pack Size,Unit,Price,Tags
MILK-1L,Whole milk 1 l,dairy,Meadowfield,STANDARD,1,l,1.19,chilled|vegetarian
BREAD-W,White loaf,bakery,Omni Basics,BUDGET,800,g,0.95,
"""

TRANSACTIONS_CSV = """Transaction ID,Customer ID,purchasedAt,SKU,Quantity,Unit Price
T1,cus_a,2025-05-01T09:30:00Z,MILK-1L,2,
T1,cus_a,2025-05-01T09:30:00Z,BREAD-W,1,0.89
T2,cus_b,2025-05-02,MILK-1L,1,
"""


@pytest.fixture
def env(clean_environ: pytest.MonkeyPatch, data_dir: Path) -> Path:
    clean_environ.setenv("OMNIX_DATA_DIR", str(data_dir))
    clean_environ.setenv("OMNIX_ENV", "test")
    return data_dir


def write(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return str(path)


def test_import_loads_a_catalogue_and_transactions_and_a_rerun_adds_nothing(
    env: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    products = write(tmp_path, "products.csv", PRODUCTS_CSV)
    transactions = write(tmp_path, "transactions.csv", TRANSACTIONS_CSV)

    assert main(["import", "--products", products, "--transactions", transactions]) == 0
    out = capsys.readouterr().out
    assert f"{products}: 2 rows read: 2 products new or changed, 0 unchanged" in out
    assert f"{transactions}: 3 rows read: 2 baskets imported, 0 already present" in out
    assert "2 new customers" in out
    assert (env / "omnix.db").exists()

    assert main(["import", "--transactions", transactions]) == 0
    assert "0 baskets imported, 2 already present, 0 new customers" in capsys.readouterr().out


def test_bad_rows_are_listed_by_line_and_the_rest_imports(
    env: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    main(["import", "--products", write(tmp_path, "p.csv", PRODUCTS_CSV)])
    capsys.readouterr()
    text = TRANSACTIONS_CSV + "T3,cus_c,2025-05-03,NOPE,1,\nT4,cus_c,2025-05-03,MILK-1L,0,\n"

    assert main(["import", "--transactions", write(tmp_path, "t.csv", text)]) == 0
    out = capsys.readouterr().out
    assert "2 baskets imported" in out
    assert "  line 5: unknown sku 'NOPE'" in out
    assert "  line 6: quantity must be at least 1, got 0" in out


def test_a_file_without_one_valid_row_fails_and_long_lists_are_cut(
    env: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = "".join(
        f"cus_x,2025-05-01T{h:02d}:{m:02d}:00Z,NOPE,1\n" for h in range(3) for m in range(20)
    )
    path = write(tmp_path, "t.csv", "customer_id,purchased_at,sku,quantity\n" + rows)

    assert main(["import", "--transactions", path]) == 1
    out = capsys.readouterr().out
    assert "0 baskets imported" in out
    assert out.count("unknown sku") == 50
    assert "... and 10 more bad rows" in out


def test_a_header_only_file_is_nothing_to_do_and_unknown_columns_are_named(
    env: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, "t.csv", "customer_id,purchased_at,sku,quantity,Loyalty Card\n")

    assert main(["import", "--transactions", path]) == 0
    captured = capsys.readouterr()
    assert "0 rows read" in captured.out
    assert "ignoring column(s) loyalty_card" in captured.err


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "cannot read"),
        ("", "is empty"),
        ("customer_id,purchased_at,sku\n", "missing required column(s): quantity"),
        ("sku,SKU,customer_id,purchased_at,quantity\n", "column(s) given twice: sku"),
    ],
)  # fmt: skip
def test_unreadable_or_malformed_files_fail_with_one_line(
    env: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str | None, message: str
) -> None:
    path = str(tmp_path / "missing.csv") if content is None else write(tmp_path, "t.csv", content)

    assert main(["import", "--transactions", path]) == 1
    err = capsys.readouterr().err
    assert message in err
    assert len(err.strip().splitlines()) == 1
    assert not (env / "omnix.db").exists()  # checked before the store is opened


def test_a_file_that_is_not_utf8_fails(
    env: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "t.csv"
    path.write_bytes(b"customer_id,purchased_at,sku,quantity\ncus_\xff,2025-05-01,MILK-1L,1\n")

    assert main(["import", "--transactions", str(path)]) == 1
    assert "cannot read" in capsys.readouterr().err


@pytest.mark.parametrize(
    "argv",
    [["import"], ["frobnicate"], [], ["serve", "--port", "70000"], ["seed", "--customers", "0"]],
)
def test_usage_errors_exit_with_2(
    env: Path, argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == 2
    assert "Traceback" not in capsys.readouterr().err


def test_help_exits_with_0(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0
    assert "serve" in capsys.readouterr().out


def test_a_configuration_error_is_one_line_and_exit_2(
    clean_environ: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    clean_environ.setenv("OMNIX_AUTH", "none")

    assert main(["seed"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("omnix: configuration error: OMNIX_AUTH")
    assert len(err.strip().splitlines()) == 1


def test_an_unusable_data_directory_fails_with_one_line(
    clean_environ: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    not_a_directory = tmp_path / "file"
    not_a_directory.write_text("")
    clean_environ.setenv("OMNIX_DATA_DIR", str(not_a_directory / "data"))

    assert main(["seed", "--customers", "3"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("omnix: ")
    assert len(err.strip().splitlines()) == 1


def test_seeding_twice_adds_nothing(env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["seed", "--customers", "12", "--as-of", "2025-06-01"]

    assert main(argv) == 0
    assert "12 customers added (0 already present)" in capsys.readouterr().out
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "0 customers added (12 already present); 0 purchases added" in out


def test_seeding_into_the_future_is_refused(env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["seed", "--as-of", "2999-01-01"]) == 2
    assert "in the future" in capsys.readouterr().err


async def test_demo_data_is_seeded_only_into_an_empty_store(env: Path) -> None:
    settings = Settings.from_env()

    assert await ensure_demo_data(settings, environ={"OMNIX_SEED_DEMO": "false"}) is None
    report = await ensure_demo_data(settings, environ={}, n_customers=8)
    assert report is not None
    assert report.customers_added == 8
    assert await ensure_demo_data(settings, environ={}, n_customers=8) is None


def test_the_seed_switch_accepts_only_true_or_false() -> None:
    assert seed_demo_enabled({}) is True
    assert seed_demo_enabled({"OMNIX_SEED_DEMO": "FALSE"}) is False
    with pytest.raises(SettingsError, match="OMNIX_SEED_DEMO"):
        seed_demo_enabled({"OMNIX_SEED_DEMO": "maybe"})


@pytest.mark.parametrize(
    ("header", "column"),
    [
        ("Customer ID", "customer_id"),
        ("purchasedAt", "purchased_at"),
        (" unit-price ", "unit_price"),
        ("SKU", "sku"),
    ],
)
def test_headers_are_normalised_to_lower_snake_case(header: str, column: str) -> None:
    assert normalise_header(header) == column


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_the_progress_bar_shows_rate_and_eta_on_a_terminal_only() -> None:
    now = [0.0]
    screen = Terminal()
    with ProgressBar(screen, total=1000, label="importing", clock=lambda: now[0]) as bar:
        now[0] = 2.0
        bar.update(250)
        assert (
            "[#######---------------------]  25% 250/1,000 rows  125/s  ETA 0:06"
            in screen.getvalue()
        )
        now[0] = 8.0
        bar.update(1000)
    assert screen.getvalue().endswith("in 0:08\n")

    pipe = io.StringIO()
    with ProgressBar(pipe, total=None, label="importing") as bar:
        bar.update(5)
    assert pipe.getvalue() == ""


def test_lines_are_counted_with_or_without_a_final_newline(tmp_path: Path) -> None:
    assert count_lines(write(tmp_path, "a.csv", "h\n1\n2\n")) == 3
    assert count_lines(write(tmp_path, "b.csv", "h\n1\n2")) == 3
    assert count_lines(write(tmp_path, "c.csv", "")) == 0
