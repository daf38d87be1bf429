"""Shared fixtures: a small synthetic shop with clear tastes, a trained local store built from it
once per session, and a fresh copy of that store (plus a Chalice test client) per test."""

from __future__ import annotations

import csv
import gzip
import random
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from chalice.test import Client

from chalicelib.seam import runtime
from chalicelib.settings import PROJECT_ROOT

# Fixtures of the `personalize` provider's tests (fake AWS, moto item table, runtime replies).
pytest_plugins = ["tests.personalize_fakes"]

DEV_KEY = "dev-local-key"  # the `local` stage's key in .chalice/config.json
AUTH = {"x-api-key": DEV_KEY}
CATEGORIES = ("garden", "kitchen", "toys")
ITEMS_PER_CATEGORY = 40
N_USERS = 150


def _write_gz(path: Path, header: list[str], rows: list[list[object]]) -> None:
    with gzip.open(path, "wt", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(header)
        writer.writerows(rows)


@pytest.fixture(scope="session")
def shop_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """items/users/interactions CSVs: each user mostly buys and views in one category.

    Item ids are `<category>-<n>`, user ids `u<n>`; user `u<n>` prefers category n % 3.
    """
    rng = random.Random(7)
    folder = tmp_path_factory.mktemp("shop")
    items = [
        [f"{cat}-{n}", f"{cat.title()} thing {n}", f"{1 + n % 10}.50", cat]
        for cat in CATEGORIES
        for n in range(ITEMS_PER_CATEGORY)
    ]
    _write_gz(folder / "items.csv.gz", ["ITEM_ID", "NAME", "PRICE", "CATEGORY"], items)
    users = [[f"u{n}", rng.choice(["UK", "FR", "DE"])] for n in range(N_USERS)]
    _write_gz(folder / "users.csv.gz", ["USER_ID", "COUNTRY"], users)
    rows = []
    ts = 1_700_000_000
    for n in range(N_USERS):
        favourite = CATEGORIES[n % 3]
        for _ in range(12):
            cat = favourite if rng.random() < 0.9 else rng.choice(CATEGORIES)
            item = f"{cat}-{min(int(rng.expovariate(0.08)), ITEMS_PER_CATEGORY - 1)}"
            ts += rng.randint(1, 600)
            event = "purchase" if rng.random() < 0.5 else "view"
            rows.append([f"u{n}", item, event, 1, ts])
    _write_gz(
        folder / "interactions.csv.gz",
        ["USER_ID", "ITEM_ID", "EVENT_TYPE", "EVENT_VALUE", "TIMESTAMP"],
        rows,
    )
    return folder


@pytest.fixture(scope="session")
def trained_store(shop_csv: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data directory with the synthetic shop imported and every solution trained."""
    from chalicelib.config import load_config
    from chalicelib.providers.local import LocalProvider
    from chalicelib.settings import Settings

    data_dir = tmp_path_factory.mktemp("trained")
    workflow = LocalProvider(Settings(data_dir=data_dir), load_config(Settings().config)).workflow
    for dataset in ("items", "users", "interactions"):
        report = workflow.import_file(dataset, str(shop_csv / f"{dataset}.csv.gz"), "full", None)
        assert report.status == "imported", report
    workflow.train(None, None)
    return data_dir


@pytest.fixture
def data_dir(trained_store: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private copy of the trained store, selected through RECS_DATA_DIR."""
    target = tmp_path / "data"
    shutil.copytree(trained_store, target)
    monkeypatch.setenv("RECS_DATA_DIR", str(target))
    runtime.reset()
    return target


@pytest.fixture
def empty_data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A store with nothing imported and no model."""
    target = tmp_path / "empty"
    monkeypatch.setenv("RECS_DATA_DIR", str(target))
    runtime.reset()
    return target


@pytest.fixture
def client(data_dir: Path) -> Iterator[Client]:
    from app import app

    with Client(app, stage_name="local", project_dir=str(PROJECT_ROOT)) as c:
        yield c
    runtime.reset()
