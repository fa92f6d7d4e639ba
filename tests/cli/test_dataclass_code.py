"""The code dataclasses compile, kept between runs of the command (reconciler.dataclass_code):
the same classes with it as without it, nothing compiled again the second time, and nothing
written where Python would write no bytecode."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

# Imports what a plan imports, with the cache in argv[1] ("-": none), then prints each method a
# dataclass of the package generated (its code, digested, and its annotations) and how many
# methods the run compiled.
PROBE = """
import dataclasses, hashlib, json, marshal, sys
from pathlib import Path
if sys.argv[1] != "-":
    from reconciler import dataclass_code
    dataclass_code.install(Path(sys.argv[1]))
import reconciler.cli, reconciler.apply, reconciler.client, reconciler.listing
methods = {}
for name, module in sorted(sys.modules.items()):
    if not name.startswith("reconciler"):
        continue
    for value in list(vars(module).values()):
        if isinstance(value, type) and dataclasses.is_dataclass(value):
            for method, function in vars(value).items():
                code = getattr(function, "__code__", None)
                if code is not None and code.co_filename == "<string>":
                    key = f"{value.__module__}.{value.__qualname__}.{method}"
                    digest = hashlib.sha256(marshal.dumps(code)).hexdigest()
                    methods[key] = [digest, repr(function.__annotations__)]
codes = getattr(vars(dataclasses).get("exec"), "__self__", None)
print(json.dumps({"methods": methods, "made": len(codes.made) if codes else None}))
"""


def probe(cache: Path | str, **env: str) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-c", PROBE, str(cache)], capture_output=True, text=True, timeout=60,
        env={**os.environ, "PYTHONDONTWRITEBYTECODE": "", **env},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    found: dict[str, Any] = json.loads(done.stdout)
    return found


def test_the_classes_are_the_same_with_the_kept_code_and_the_second_run_compiles_nothing(
    tmp_path: Path,
) -> None:
    cache = tmp_path / "dataclasses"
    without = probe("-")
    first, second = probe(cache), probe(cache)
    assert len(without["methods"]) > 300  # every dataclass of what a plan imports
    assert first["methods"] == second["methods"] == without["methods"]
    assert first["made"] > 100 and second["made"] == 0
    assert len(list(cache.iterdir())) == 1  # one file, for this Python


def test_nothing_is_kept_where_python_would_write_no_bytecode(tmp_path: Path) -> None:
    cache = tmp_path / "dataclasses"
    assert probe(cache, PYTHONDONTWRITEBYTECODE="1")["made"] > 0
    assert not cache.exists()


def test_a_damaged_file_is_compiled_again_and_replaced(tmp_path: Path) -> None:
    cache = tmp_path / "dataclasses"
    probe(cache)
    (kept,) = cache.iterdir()
    kept.write_bytes(kept.read_bytes()[:1000])  # cut short, as a full disk would leave it
    again = probe(cache)
    assert again["made"] > 0 and again["methods"] == probe("-")["methods"]
    assert probe(cache)["made"] == 0


def test_the_command_keeps_its_dataclass_code_in_the_user_cache_directory(
    tmp_path: Path,
) -> None:
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path), "PYTHONDONTWRITEBYTECODE": ""}
    done = subprocess.run(
        [sys.executable, "-m", "reconciler", "--version"], env=env, capture_output=True,
        text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert list((tmp_path / "polaris-reconciler" / "dataclasses").glob("*.marshal"))
