"""`make demo`: start a local emulator, then run the main flow on manifests/ against it.

validate -> plan -> apply --wait -> plan (which must show no changes).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
# Demo-only AWS access keys for the guide's demo-conn: the emulator accepts any value.
DEMO_SECRETS = {
    "DEMO_AWS_ACCESS_KEY_ID": "AKIADEMODEMODEMO0000",
    "DEMO_AWS_SECRET_ACCESS_KEY": "demo-secret-never-printed-0000000000000",
}


def step(title: str, *args: str, env: dict[str, str], ok: tuple[int, ...] = (0,)) -> int:
    """Run one reconciler command, showing it as a user would type it."""
    print(f"\n\033[1m$ reconciler {' '.join(args)}\033[0m  # {title}", flush=True)
    code = subprocess.call([sys.executable, "-m", "reconciler", *args], env=env, cwd=ROOT)
    if code not in ok:
        raise SystemExit(f"demo: `reconciler {' '.join(args)}` exited {code}")
    return code


def security_team_creates_their_connection(env: dict[str, str]) -> None:
    """manifests/weblogs declares security-audit as managed elsewhere: someone else creates it."""
    base = f"{env['POLARIS_URL']}/v1/projects/{env['POLARIS_PROJECT_ID']}"
    body = {
        "type": "s3",
        "name": "security-audit",
        "bucket": "acme-security-audit",
        "awsEndpoint": "s3.eu-west-1.amazonaws.com",
    }
    response = httpx.post(f"{base}/connections", json=body, auth=(env["POLARIS_API_KEY"], ""))
    print(f"(the security team created Connection/security-audit: HTTP {response.status_code})")


def main() -> None:
    """Run the demo from start to finish; the emulator stops with it."""
    env = {**os.environ, **DEMO_SECRETS}
    emulator = subprocess.Popen(
        [sys.executable, "-m", "reconciler", "emulator", "--port", "0", "--job-seconds", "2"],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert emulator.stdout is not None
        banner = []
        for line in emulator.stdout:
            banner.append(line)
            if line.startswith("export POLARIS_API_KEY="):
                break
        print("".join(banner), end="", flush=True)
        for line in banner:
            if line.startswith("export "):
                name, _, value = line.removeprefix("export ").strip().partition("=")
                env[name] = value.strip("'\"")
        security_team_creates_their_connection(env)
        step("offline checks", "validate", "manifests/", env=env)
        step("what would change", "plan", "manifests/", env=env)
        step("make it so", "apply", "manifests/", "--auto-approve", "--wait", env=env)
        step(
            "nothing left to do",
            "plan",
            "manifests/",
            "--detailed-exitcode",
            env=env,
        )
        print("\nThe demo converged: a second plan shows no changes.")
    finally:
        emulator.terminate()
        emulator.wait(timeout=10)


if __name__ == "__main__":
    main()
