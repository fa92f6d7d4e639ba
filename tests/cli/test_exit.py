"""How the command ends: its output whole, its exit code kept, its exit handlers run, and no time
spent freeing, one by one, objects the system takes back at once."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from reconciler.client import PolarisClient
from tests.fixtures import external_connection_exists

ROOT = Path(__file__).resolve().parents[2]
# The console script as installed, with two witnesses: an exit handler, which must run, and an
# object freed only when the interpreter is torn down.
PROBE = """
import atexit, sys, threading, time
from reconciler.cli import main

class Witness:
    def __del__(self):
        sys.stderr.write("torn down\\n")

sys.modules["witness"] = Witness()  # freed when the modules are, at teardown
atexit.register(lambda: sys.stderr.write("exit handlers ran\\n"))
if "--witness-the-plan" in sys.argv:  # said when the plan is freed before the process ends
    import weakref
    from reconciler.manager import Manager
    sys.argv.remove("--witness-the-plan")
    planned = Manager.plan

    def witnessed(self, run):
        result = planned(self, run)
        weakref.finalize(result, sys.stderr.write, "plan freed\\n").atexit = False
        return result

    Manager.plan = witnessed
if "--with-thread" in sys.argv:
    sys.argv.remove("--with-thread")
    threading.Thread(target=lambda: (time.sleep(0.3), sys.stderr.write("thread done\\n"))).start()
main()
"""


def run(*args: str) -> subprocess.CompletedProcess[str]:
    env = {"XDG_CACHE_HOME": str(ROOT / ".pytest_cache" / "exit-probe"), **os.environ}
    return subprocess.run(
        [sys.executable, "-c", PROBE, *args], env=env, capture_output=True, text=True, timeout=60
    )


def test_a_command_ends_once_its_output_is_flushed_and_its_exit_handlers_ran(
    tmp_path: Path,
) -> None:
    done = run("validate", "--format", "json", str(ROOT / "manifests"))
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["valid"] is True  # the whole output, flushed
    assert "exit handlers ran" in done.stderr
    assert "torn down" not in done.stderr  # the system takes the memory back, all at once


def test_a_plan_is_not_freed_one_object_at_a_time_before_the_process_ends(
    served: Any, client: PolarisClient
) -> None:
    external_connection_exists(client)
    # Freeing a plan of 1,000 jobs over 10,000 live ones took 10 ms of a cold plan's end.
    done = run("plan", "--format", "json", str(ROOT / "manifests"), "--witness-the-plan")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["changes"]  # the whole plan, printed
    assert "exit handlers ran" in done.stderr
    assert "plan freed" not in done.stderr


def test_a_plan_run_in_process_keeps_nothing_once_it_ends(
    served: Any, client: PolarisClient
) -> None:
    external_connection_exists(client)
    import gc
    import weakref

    from reconciler.cli import main
    from reconciler.manager import Manager

    freed: list[str] = []
    planned = Manager.plan

    def witnessed(self: Manager, plan_run: Any) -> Any:
        result = planned(self, plan_run)
        weakref.finalize(result, freed.append, "plan freed")
        return result

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(Manager, "plan", witnessed)
        main(["plan", "--format", "json", str(ROOT / "manifests")])  # returns: no SystemExit
    gc.collect()
    assert freed == ["plan freed"]  # a caller's run leaves nothing behind


def test_a_failing_command_keeps_its_exit_code(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("apiVersion: reconciler/v1\nkind: Table\nmetadata: {name: t}\n")
    done = run("validate", str(bad))
    assert done.returncode == 1
    assert "bad.yaml:1" in done.stdout + done.stderr
    assert "exit handlers ran" in done.stderr


def test_a_thread_still_running_is_waited_for_as_python_would(tmp_path: Path) -> None:
    done = run("validate", str(ROOT / "manifests"), "--with-thread")
    assert done.returncode == 0, done.stderr
    assert "thread done" in done.stderr
