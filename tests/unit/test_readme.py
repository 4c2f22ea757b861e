"""README.md: its generated tables match the tap, and its two quick-start commands are the ones CI runs.

``python -m tests.unit.test_readme --write`` regenerates the blocks between ``<!-- NAME:start -->`` and
``<!-- NAME:end -->`` markers: the settings table (verbatim from ``tap-comagic --about --format markdown``),
the streams table (from the stream classes) and the troubleshooting table (from ``tap_comagic.errors``).
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
DEMO_COMMAND = ("python3 -m venv .venv && .venv/bin/pip install 'meltano~=4.4' && .venv/bin/meltano install && "
                "mkdir -p output && .venv/bin/meltano --environment=demo run tap-comagic target-duckdb && "
                ".meltano/loaders/target-duckdb/venv/bin/python -m tools.demo_counts output/demo.duckdb")
TEST_COMMAND = "python3 -m venv .venv && .venv/bin/pip install -e '.[test]' && .venv/bin/pytest"


def about_markdown() -> str:
    exe = Path(sys.executable).with_name("tap-comagic")
    command = [str(exe)] if exe.exists() else [sys.executable, "-m", "tap_comagic"]
    return subprocess.run([*command, "--about", "--format", "markdown"], check=True, capture_output=True,
                          text=True).stdout


def settings_block() -> str:
    """The about output's settings section, without its heading, verbatim."""
    text = about_markdown()
    match = re.search(r"^## Settings\n(.*?)(?=^## |\Z)", text, flags=re.S | re.M)
    assert match, "no `## Settings` section in tap-comagic --about --format markdown"
    return match.group(1).strip("\n")


def streams_block() -> str:
    from tap_comagic.registry import STREAMS

    lines = ["| Stream | API method | Primary key | Replication key | Parent | Selected by default |",
             "|:--|:--|:--|:--|:--|:--|"]
    for s in STREAMS:
        parent = getattr(s, "parent_stream_type", None)
        lines.append(
            f"| `{s.name}` | `{s.api_method}` | {', '.join(f'`{k}`' for k in s.primary_keys)} | "
            f"{f'`{s.replication_key}`' if s.replication_key else 'none: the whole table'} | "
            f"{f'`{parent.name}`' if parent else ''} | "
            f"{'yes' if getattr(s, 'selected_by_default', True) else 'no'} |")
    return "\n".join(lines)


def troubleshooting_block() -> str:
    from tap_comagic.errors import ACTIONS, ADVICE, Action

    lines = ["| Mnemonic | What the tap does | What to do |", "|:--|:--|:--|"]
    for mnemonic in sorted(set(ACTIONS) | set(ADVICE)):
        action = ACTIONS.get(mnemonic, Action.FAIL)
        default = {Action.FAIL: "",
                   Action.SKIP_STREAM: "the account lacks this report: enable its component in CoMagic, or "
                   "deselect the stream"}.get(action, "nothing: the tap handles it")
        advice = ADVICE.get(mnemonic, default)
        lines.append(f"| `{mnemonic}` | {action.value} | {advice} |")
    return "\n".join(lines)


BLOCKS = {"settings": settings_block, "streams": streams_block, "troubleshooting": troubleshooting_block}


def render(text: str) -> str:
    for name, make in BLOCKS.items():
        start, end = f"<!-- {name}:start -->\n", f"\n<!-- {name}:end -->"
        if start not in text or end not in text:
            raise ValueError(f"README.md lacks the {name} markers")
        head, rest = text.split(start, 1)
        text = head + start + make() + end + rest.split(end, 1)[1]
    return text


# ---- tests -------------------------------------------------------------------------------------------

def test_generated_blocks_are_current():
    text = README.read_text(encoding="utf-8")
    assert text == render(text), "README.md is stale: run `python -m tests.unit.test_readme --write`"


def test_settings_table_is_the_about_output_verbatim():
    text = README.read_text(encoding="utf-8")
    block = settings_block()
    assert "| access_token |" in block
    assert block in text


def test_quick_start_comes_first_with_exactly_two_commands():
    text = README.read_text(encoding="utf-8")
    headings = re.findall(r"^## (.+)$", text, flags=re.M)
    assert headings[0] == "Quick start"
    quick = text.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    commands = re.findall(r"```(?:sh|bash|shell)\n(.*?)```", quick, flags=re.S)
    assert [c.strip() for c in commands] == [DEMO_COMMAND, TEST_COMMAND]


def test_ci_runs_the_readme_test_command_verbatim():
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert TEST_COMMAND in ci.splitlines()
    assert ci.startswith("#!/usr/bin/env bash")
    assert "set -euo pipefail" in ci


def test_reliability_and_performance_placeholders():
    headings = re.findall(r"^## (.+)$", README.read_text(encoding="utf-8"), flags=re.M)
    for name in ("Install", "Settings", "Streams", "Authentication", "Troubleshooting", "Scaling out",
                 "Reliability", "Performance"):
        assert name in headings, name


def main(argv: list[str]) -> int:
    if argv[1:] != ["--write"]:
        print("usage: python -m tests.unit.test_readme --write", file=sys.stderr)
        return 2
    README.write_text(render(README.read_text(encoding="utf-8")), encoding="utf-8")
    print("wrote README.md")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
