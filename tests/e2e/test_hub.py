"""The Meltano Hub plugin definition (.github/hub/tap-comagic.yml): in step with the tap, valid, installable."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from tests.e2e_fixtures import ROOT, run_meltano
from tools.hub_definition import DEFINITION, SCHEMA, about, definition, render


@pytest.fixture(scope="module")
def info() -> dict[str, Any]:
    return about()


@pytest.fixture(scope="module")
def hub() -> dict[str, Any]:
    return dict(yaml.safe_load(DEFINITION.read_text(encoding="utf-8")))


def validator() -> jsonschema.Draft7Validator:
    schema = json.loads(SCHEMA.read_text(encoding="utf-8"))
    jsonschema.Draft7Validator.check_schema(schema)
    return jsonschema.Draft7Validator(schema, format_checker=jsonschema.Draft7Validator.FORMAT_CHECKER)


def test_file_is_what_the_generator_derives_from_the_tap(info):
    assert DEFINITION.read_text(encoding="utf-8") == render(info), (
        "the Hub definition is stale: run `python -m tools.hub_definition --write`")


def test_definition_follows_about(info, hub):
    assert hub["name"] == info["name"] == "tap-comagic"
    assert hub["namespace"] == "tap_comagic"
    assert sorted(hub["capabilities"]) == sorted(info["capabilities"])
    assert [s["name"] for s in hub["settings"]] == list(info["settings"]["properties"])
    secret = {name for name, spec in info["settings"]["properties"].items() if spec.get("secret")}
    assert {s["name"] for s in hub["settings"] if s.get("sensitive")} == secret
    assert {"access_token", "password"} <= secret
    kinds = {s["name"]: s["kind"] for s in hub["settings"]}
    assert kinds["start_date"] == kinds["end_date"] == "date_iso8601"
    assert kinds["user_id"] == kinds["page_size"] == "integer"
    assert kinds["sandbox"] == "boolean"
    assert kinds["filters"] == "object"
    assert all(s.get("label") and s.get("description") for s in hub["settings"])
    assert "meltano_sdk" in hub["keywords"]
    groups = [set(g) for g in hub["settings_group_validation"]]
    assert any("access_token" in g and "password" not in g for g in groups)
    assert any({"login", "password"} <= g and "access_token" not in g for g in groups)
    for field in ("variant", "pip_url", "repo", "label", "description", "logo_url", "domain_url",
                  "maintenance_status", "quality"):
        assert hub.get(field), field


def test_definition_is_valid_against_the_hub_schema(hub):
    errors = [e.message for e in validator().iter_errors(hub)]
    assert errors == []


@pytest.mark.parametrize(("change", "why"), [
    (lambda d: d.pop("quality"), "quality is required"),
    (lambda d: d["settings"][0].update(kind="secret"), "unknown setting kind"),
    (lambda d: d["capabilities"].append("fly"), "unknown capability"),
    (lambda d: d.update(maintenance_status="great"), "unknown maintenance status"),
    (lambda d: d.update(colour="blue"), "unknown top-level key"),
    (lambda d: d["settings"][0].update(secret=True), "unknown setting key"),
])
def test_schema_rejects_a_broken_definition(hub, change, why):
    broken = copy.deepcopy(hub)
    change(broken)
    assert list(validator().iter_errors(broken)), why


def test_generator_is_deterministic(info):
    assert definition(info) == definition(info)


@pytest.mark.slow
def test_meltano_adds_the_extractor_from_the_definition(tmp_path: Path):
    """`meltano add --from-ref` in a fresh project installs the tap and Meltano knows its settings.

    The published pip_url names the PyPI package; here it points at this checkout (not published yet).
    """
    hub = yaml.safe_load(DEFINITION.read_text(encoding="utf-8"))
    hub["pip_url"] = f"-e {ROOT}"
    ref = tmp_path / "tap-comagic.yml"
    ref.write_text(yaml.safe_dump(hub, sort_keys=False), encoding="utf-8")
    run_meltano(tmp_path, "init", "project", "--no_usage_stats")
    project = tmp_path / "project"
    run_meltano(project, "add", "--plugin-type", "extractor", "tap-comagic", "--from-ref", str(ref))
    added = yaml.safe_load((project / "meltano.yml").read_text(encoding="utf-8"))
    extractors = added["plugins"]["extractors"]
    assert [p["name"] for p in extractors] == ["tap-comagic"]
    assert "utilities" not in added["plugins"]
    listed = run_meltano(project, "config", "list", "tap-comagic", "--all").stdout
    for setting in hub["settings"]:
        assert setting["name"] in listed
    about_out = run_meltano(project, "invoke", "tap-comagic", "--about", "--format", "json").stdout
    assert json.loads(about_out)["name"] == "tap-comagic"
    secret = "not-a-real-key-4f1c"
    redacted = run_meltano(project, "config", "list", "tap-comagic", env={"TAP_COMAGIC_ACCESS_TOKEN": secret}).stdout
    assert "(redacted)" in redacted
    assert secret not in redacted
