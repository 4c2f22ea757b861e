"""README.md and the documents it links: the generated tables match the tap, the quick start is two commands
(the second is the one CI runs), and every link between the documents leads somewhere.

``python -m tests.unit.test_readme --write`` regenerates the blocks between ``<!-- NAME:start -->`` and
``<!-- NAME:end -->`` markers: in the README the settings table (verbatim from ``tap-comagic --about --format
markdown``) and the streams table (from the stream classes), in docs/reliability.md the table of error
mnemonics (from ``tap_comagic.errors``).
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
RELIABILITY = ROOT / "docs" / "reliability.md"
DOCUMENTS = [README, ROOT / "CONTRIBUTING.md", *sorted((ROOT / "docs").glob("*.md"))]


def about_markdown() -> str:
    exe = Path(sys.executable).with_name("tap-comagic")
    command = [str(exe)] if exe.exists() else [sys.executable, "-m", "tap_comagic"]
    return subprocess.run([*command, "--about", "--format", "markdown"], check=True, capture_output=True,
                          text=True).stdout


# The SDK's own settings, the same in every SDK tap: one line of the README names them instead of 17 rows.
SDK_SETTINGS = ("stream_maps", "stream_map_config", "faker_config", "flattening_", "batch_config")


def settings_block() -> str:
    """The about output's settings section, without its heading: the tap's own rows verbatim, then one line
    naming the SDK's standard settings."""
    text = about_markdown()
    match = re.search(r"^## Settings\n(.*?)(?=^## |\Z)", text, flags=re.S | re.M)
    assert match, "no `## Settings` section in tap-comagic --about --format markdown"
    rows = [line for line in match.group(1).strip("\n").splitlines()
            if line.startswith("|") and not line.startswith(tuple(f"| {s}" for s in SDK_SETTINGS))]
    sdk = ("Also the SDK's standard settings `stream_maps`, `stream_map_config`, `faker_config`, `flattening_*` "
           "and `batch_config` ([docs/loading.md](docs/loading.md)): `tap-comagic --about`.")
    return "\n".join([*rows, "", sdk])


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


BLOCKS = {README: {"settings": settings_block, "streams": streams_block},
          RELIABILITY: {"troubleshooting": troubleshooting_block}}


def render(document: Path) -> str:
    """The document with its generated blocks made anew."""
    text = document.read_text(encoding="utf-8")
    for name, make in BLOCKS[document].items():
        start, end = f"<!-- {name}:start -->\n", f"\n<!-- {name}:end -->"
        if start not in text or end not in text:
            raise ValueError(f"{document.name} lacks the {name} markers")
        head, rest = text.split(start, 1)
        text = head + start + make() + end + rest.split(end, 1)[1]
    return text


# ---- tests -------------------------------------------------------------------------------------------

@pytest.mark.parametrize("document", sorted(BLOCKS), ids=lambda p: str(p.relative_to(ROOT)))
def test_generated_blocks_are_current(document: Path):
    assert document.read_text(encoding="utf-8") == render(document), \
        f"{document.name} is stale: run `python -m tests.unit.test_readme --write`"


def quick_start_commands() -> list[str]:
    """The shell blocks of the README's quick start, each as one line (continuation lines joined)."""
    text = README.read_text(encoding="utf-8")
    quick = text.split("\n## Quick start\n", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```(?:sh|bash|shell)\n(.*?)```", quick, flags=re.S)
    return [re.sub(r"\s*\\\n\s*", " ", block).strip() for block in blocks]


def test_quick_start_comes_first_and_ci_runs_its_test_command_verbatim():
    headings = re.findall(r"^## (.+)$", README.read_text(encoding="utf-8"), flags=re.M)
    assert headings[0] == "Quick start"
    _, tests = quick_start_commands()
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert tests in ci.splitlines()
    assert "-m" not in tests.split("pytest", 1)[1].split(), "the README's test command runs every test, slow too"


def test_the_quick_start_demo_runs_a_job_of_the_meltano_project():
    import yaml

    demo, _ = quick_start_commands()
    match = re.search(r"meltano run (\S+)", demo)
    assert match, demo
    project = yaml.safe_load((ROOT / "meltano.yml").read_text(encoding="utf-8"))
    jobs = {job["name"]: job["tasks"] for job in project.get("jobs") or []}
    assert match.group(1) in jobs, f"meltano.yml has no job {match.group(1)}"
    first = jobs[match.group(1)][0]
    assert str(first).split()[:2] == ["tap-comagic", "target-duckdb"], first
    target = project["plugins"]["loaders"][0]
    database = re.search(r"tools\.demo_counts (\S+)", demo)
    assert database, demo
    assert target["config"]["filepath"].endswith("/" + database.group(1)), (database, target)


def anchors(path: Path) -> set[str]:
    """The anchors GitHub makes of a Markdown file's headings."""
    out = set()
    for heading in re.findall(r"^#+ (.+)$", path.read_text(encoding="utf-8"), flags=re.M):
        slug = re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")
        out.add(slug)
    return out


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_link_between_the_documents_leads_somewhere(document: Path):
    text = re.sub(r"```.*?```", "", document.read_text(encoding="utf-8"), flags=re.S)
    broken = []
    for target in re.findall(r"\]\(([^)\s]+)\)", text):
        if re.match(r"[a-z]+:", target):
            continue  # a web address: not checked here, the tests use no network
        path, _, anchor = target.partition("#")
        file = (document.parent / path).resolve() if path else document
        if not file.exists() or (anchor and file.suffix == ".md" and anchor not in anchors(file)):
            broken.append(target)
    assert not broken, f"{document.name}: {broken}"


def main(argv: list[str]) -> int:
    if argv[1:] != ["--write"]:
        print("usage: python -m tests.unit.test_readme --write", file=sys.stderr)
        return 2
    for document in BLOCKS:
        document.write_text(render(document), encoding="utf-8")
        print(f"wrote {document.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
