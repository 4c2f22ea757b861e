"""meltano.yml: the tap's settings as the tap declares them, the loaders, and the four environments."""

from __future__ import annotations

import re
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
    # a secret's value may only name the environment variable that holds it (dbt-postgres in prod takes
    # target-postgres' password so)
    values = re.findall(r"^\s*(access_token|password|sqlalchemy_url):[ \t]*(.*)$", text, flags=re.M)
    assert values, "meltano.yml sets no secret at all: the check would prove nothing"
    assert [(name, value) for name, value in values if not re.fullmatch(r"\$[A-Z][A-Z0-9_]*", value)] == []


def test_select_is_the_tap_default_selection(tap):
    from tap_comagic.registry import STREAMS

    default = {s.name for s in STREAMS if getattr(s, "selected_by_default", True)}
    assert {rule.split(".")[0] for rule in tap["select"]} == default
    assert all(rule.endswith(".*") for rule in tap["select"])


def utility(project: dict[str, Any], name: str) -> dict[str, Any]:
    (plugin,) = [p for p in project["plugins"]["utilities"] if p["name"] == name]
    return dict(plugin)


def pins(pip_url: str) -> dict[str, str]:
    return dict(part.split("==") for part in pip_url.split())


def test_dbt_utilities_pin_one_dbt_and_the_loader_s_duckdb(project):
    duckdb, postgres = utility(project, "dbt-duckdb"), utility(project, "dbt-postgres")
    loaders = {p["name"]: p for p in project["plugins"]["loaders"]}
    assert set(pins(duckdb["pip_url"])) == {"dbt-core", "dbt-duckdb", "duckdb"}
    assert set(pins(postgres["pip_url"])) == {"dbt-core", "dbt-postgres"}
    assert pins(duckdb["pip_url"])["dbt-core"] == pins(postgres["pip_url"])["dbt-core"]
    # one DuckDB writes the file the loader fills and the models are built into
    assert pins(duckdb["pip_url"])["duckdb"] == pins(loaders["target-duckdb"]["pip_url"].split()[1])["duckdb"]
    for plugin in (duckdb, postgres):
        assert plugin["executable"] == "dbt"
        assert plugin["commands"]["build"]["args"] == "build"
        assert plugin["config"]["project_dir"] == "$MELTANO_PROJECT_ROOT/transform"


@pytest.mark.parametrize(("name", "adapter"), [("dbt-duckdb", "duckdb"), ("dbt-postgres", "postgres")])
def test_profile_reads_only_variables_the_utility_sets(project, name, adapter):
    plugin = utility(project, name)
    prefix = name.upper().replace("-", "_")
    set_by_meltano = {s.get("env") or f"{prefix}_{s['name'].upper()}" for s in plugin["settings"]}
    profiles_dir = plugin["config"]["profiles_dir"].replace("$MELTANO_PROJECT_ROOT", str(ROOT))
    text = (ROOT / "transform" / "profiles" / adapter / "profiles.yml").read_text(encoding="utf-8")
    assert profiles_dir == str(ROOT / "transform" / "profiles" / adapter)
    read = set(re.findall(r"env_var\('([A-Z_]+)'", text))
    assert read, "the profile reads no variable"
    assert read <= set_by_meltano, read - set_by_meltano
    # and the dbt project's source schema comes from the utility's source_schema setting
    sources = (ROOT / "transform" / "models" / "staging" / "_comagic__sources.yml").read_text(encoding="utf-8")
    (source_schema,) = [s["env"] for s in plugin["settings"] if s["name"] == "source_schema"]
    assert f"env_var('{source_schema}', 'comagic')" in sources


def test_demo_and_agency_select_what_the_marts_need(project, tap):
    envs = {e["name"]: e for e in project["environments"]}
    for name in ("demo", "agency"):
        (extractor,) = envs[name]["config"]["plugins"]["extractors"]
        assert sorted(extractor["select"]) == sorted([*tap["select"], "campaign_daily_stat.*"]), name
    # dbt-duckdb builds into the file target-duckdb fills, in every environment that sets one
    loaders = {p["name"]: p for p in project["plugins"]["loaders"]}
    assert utility(project, "dbt-duckdb")["config"]["path"] == loaders["target-duckdb"]["config"]["filepath"]
    for env in project["environments"]:
        plugins = env["config"]["plugins"]
        files = {p["name"]: p["config"].get("filepath") or p["config"].get("path")
                 for p in plugins.get("loaders", []) + plugins.get("utilities", [])}
        assert files.get("target-duckdb") == files.get("dbt-duckdb"), env["name"]
