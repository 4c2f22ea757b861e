"""meltano.yml: the tap's settings as the tap declares them, the loaders, and the four environments."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from tests.e2e_fixtures import ROOT
from tools.hub_definition import about, definition


@pytest.fixture(scope="module")
def project() -> dict[str, Any]:
    return dict(yaml.safe_load((ROOT / "meltano.yml").read_text(encoding="utf-8")))


@pytest.fixture(scope="module")
def tap(project) -> dict[str, Any]:
    (plugin,) = [p for p in project["plugins"]["extractors"] if p["name"] == "tap-comagic"]
    return dict(plugin)


def test_extractor_is_the_local_package(tap):
    assert tap["namespace"] == "tap_comagic"
    assert tap["pip_url"] == "-e ."
    assert tap["executable"] == "tap-comagic"


def test_extractor_settings_are_the_hub_definitions(tap):
    hub = definition(about())
    assert tap["settings"] == hub["settings"]
    assert sorted(tap["capabilities"]) == hub["capabilities"]
    assert tap["settings_group_validation"] == hub["settings_group_validation"]
    sensitive = {s["name"] for s in tap["settings"] if s.get("sensitive")}
    assert {"access_token", "password"} <= sensitive


def test_loaders(project):
    loaders = {p["name"]: p for p in project["plugins"]["loaders"]}
    assert set(loaders) == {"target-duckdb", "target-postgres", "target-csv", "target-postgres-copy",
                            "target-postgres-pipelinewise", "target-jsonl"}
    # every loader pinned to one release (the loads' instants are checked against those releases)
    for loader in loaders.values():
        if "inherit_from" not in loader:
            assert all("==" in part for part in loader["pip_url"].split()), loader["name"]
    assert loaders["target-postgres-copy"] == {"name": "target-postgres-copy", "inherit_from": "target-postgres",
                                               "config": {"use_copy": True}}
    assert loaders["target-duckdb"]["variant"] == "jwills"
    assert loaders["target-postgres"]["variant"] == "meltanolabs"
    assert loaders["target-postgres"]["pip_url"].startswith("meltanolabs-target-postgres")
    assert loaders["target-postgres"]["config"]["load_method"] == "upsert"
    # target-duckdb 0.8.0 loses the first row of each batch with DuckDB >= 1.3 (see meltano.yml).
    assert "duckdb==1.2.2" in loaders["target-duckdb"]["pip_url"].split()


def test_environments(project):
    envs = {e["name"]: e for e in project["environments"]}
    assert set(envs) == {"demo", "agency", "dev", "prod"}
    assert project["default_environment"] == "demo"
    demo = envs["demo"]["config"]["plugins"]["extractors"][0]["config"]
    assert demo["sandbox"] is True
    assert str(demo["start_date"]).startswith("2026-01-01")
    # agency: the same simulated period, read as an agent, into a DuckDB file of its own
    agency = envs["agency"]["config"]["plugins"]
    assert agency["extractors"][0]["config"] == {**demo, "customers": "all"}
    (duckdb,) = agency["loaders"]
    assert duckdb["name"] == "target-duckdb"
    assert duckdb["config"]["filepath"].endswith("/output/agency.duckdb")
    # prod: the tap's BATCH files loaded by COPY, date-times in UTC (docs/loading.md)
    prod = envs["prod"]["config"]["plugins"]
    assert prod["extractors"][0]["config"]["datetime_output"] == "utc"
    assert prod["extractors"][0]["config"]["batch_config"]["encoding"] == {"format": "jsonl", "compression": "gzip"}
    assert prod["loaders"][0]["config"]["use_copy"] is True
    text = (ROOT / "meltano.yml").read_text(encoding="utf-8")
    for secret in ("access_token:", "password:", "sqlalchemy_url:"):
        assert secret not in text.replace(f"name: {secret[:-1]}", ""), f"no {secret} value in meltano.yml"


def test_select_is_the_tap_default_selection(tap):
    from tap_comagic.registry import STREAMS

    default = {s.name for s in STREAMS if getattr(s, "selected_by_default", True)}
    assert {rule.split(".")[0] for rule in tap["select"]} == default
    assert all(rule.endswith(".*") for rule in tap["select"])
