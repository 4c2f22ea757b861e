"""Helpers of the Meltano and end-to-end tests: finding executables, running Meltano, a throwaway PostgreSQL.

Plain functions (no fixtures), so that test modules can build their own fixtures on them.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PG_DSN_ENV = "TAP_COMAGIC_TEST_PG_DSN"


def executable(name: str) -> str:
    """An executable installed beside this Python (the test venv), else on PATH; skip when absent."""
    beside = Path(sys.executable).with_name(name)
    if beside.exists():
        return str(beside)
    found = shutil.which(name)
    if found is None:
        if os.environ.get("CI"):
            pytest.fail(f"{name} is not installed: `pip install -e '.[test]'` installs it")
        pytest.skip(f"{name} is not installed (pip install -e '.[test]')")
    return found


def meltano_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment for a Meltano subprocess: no inherited tap or target settings, no usage stats."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TAP_COMAGIC_", "TARGET_", "MELTANO_"))}
    env.update({"MELTANO_SEND_ANONYMOUS_USAGE_STATS": "false", "MELTANO_DISABLE_TRACKING": "true",
                "NO_COLOR": "1", "PYTHONWARNINGS": "ignore"})
    env.update(extra or {})
    return env


def run_meltano(project: Path, *args: str, env: dict[str, str] | None = None,
                timeout: float = 900) -> subprocess.CompletedProcess[str]:
    """Run ``meltano ARGS`` in ``project``; on failure, fail the test with the end of its log."""
    result = subprocess.run([executable("meltano"), *args], cwd=project, env=meltano_env(env),
                            capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL, check=False)
    if result.returncode != 0:
        log = (result.stdout + result.stderr)[-6000:]
        pytest.fail(f"meltano {' '.join(args)} exited {result.returncode}:\n{log}")
    return result


def make_project(path: Path, *install: str) -> Path:
    """A Meltano project in ``path`` like the repository's (a copy of meltano.yml whose tap is this checkout,
    and of the dbt project transform/), installed with ``meltano install INSTALL`` (everything when empty,
    e.g. ``extractor tap-comagic``)."""
    text = (ROOT / "meltano.yml").read_text(encoding="utf-8")
    assert "pip_url: -e .\n" in text
    path.mkdir(parents=True, exist_ok=True)
    shutil.copytree(ROOT / "transform", path / "transform", dirs_exist_ok=True,
                    ignore=shutil.ignore_patterns("target", "logs", "dbt_packages", ".user.yml"))
    (path / "meltano.yml").write_text(text.replace("pip_url: -e .\n", f"pip_url: -e {ROOT}\n"), encoding="utf-8")
    run_meltano(path, "install", *install)
    return path


def run_meltano_together(jobs: dict[str, tuple[Path, list[str], dict[str, str]]], logs: Path,
                         timeout: float = 900) -> dict[str, subprocess.CompletedProcess[str]]:
    """Start ``meltano ARGS`` in PROJECT for every job (name -> (PROJECT, ARGS, ENV)) at once, then wait for
    them all; fail the test with the end of the log of any that failed. Each job logs into a file under
    ``logs`` (not a pipe: a full pipe nobody reads would stall a job while the test waits for another)."""
    logs.mkdir(parents=True, exist_ok=True)
    started: dict[str, tuple[subprocess.Popen[str], Path]] = {}
    try:
        for name, (project, args, env) in jobs.items():
            log = logs / f"{name}.log"
            with log.open("w", encoding="utf-8") as out:
                started[name] = (subprocess.Popen([executable("meltano"), *args], cwd=project, env=meltano_env(env),
                                                  stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                                  text=True), log)
        results = {}
        for name, (process, log) in started.items():
            code = process.wait(timeout=timeout)
            results[name] = subprocess.CompletedProcess(process.args, code, log.read_text(encoding="utf-8"), "")
    finally:
        for process, _ in started.values():
            if process.poll() is None:
                process.kill()
                process.wait()
    failed = [f"meltano {' '.join(jobs[name][1])} ({name}) exited {r.returncode}:\n{r.stdout[-6000:]}"
              for name, r in results.items() if r.returncode != 0]
    if failed:
        pytest.fail("\n\n".join(failed))
    return results


def pg_dsn() -> str:
    """The DSN of a throwaway PostgreSQL database (.ci/run starts one); skip without it, fail in CI."""
    dsn = os.environ.get(PG_DSN_ENV)
    if not dsn:
        if os.environ.get("CI"):
            pytest.fail(f"{PG_DSN_ENV} is not set: .ci/run starts a throwaway PostgreSQL and sets it")
        pytest.skip(f"{PG_DSN_ENV} is not set (a PostgreSQL URL such as postgresql://user@127.0.0.1:5432/db)")
    return dsn
