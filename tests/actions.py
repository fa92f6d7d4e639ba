"""Run the example CI definitions' steps locally, the way GitHub Actions and GitLab CI run them.

Only what the examples use is supported, and anything else fails loudly, so an example cannot
rely on a feature this runner would silently skip: `${{ }}` expressions made of context paths,
'strings', ==, !=, &&, ||, ! and the status functions; `run:` steps in bash with GitHub's
`-e -o pipefail`; `if:`; workflow, job and step `env:`; matrices; and this repository's own
action.yml for `uses: */polaris-reconciler@*`. The steps that set up a machine (checkout,
setup-python, the pip cache, pip install) are skipped: the tests run in the repository's virtualenv. `gh` is
a recording fake (FAKE_GH below), the only stand-in, for GitHub's API.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
SKIPPED_ACTIONS = ("actions/checkout@", "actions/setup-python@", "actions/cache@")
OUR_ACTION = re.compile(r"^[\w.-]+/polaris-reconciler@[\w.-]+$")


# Expressions ------------------------------------------------------------------------------------

_TOKEN = re.compile(
    r"\s*(?:(?P<str>'(?:[^']|'')*')|(?P<op>&&|\|\||==|!=|!|\(|\))|(?P<name>[A-Za-z_][\w.-]*))"
)


class Expressions:
    """Evaluates `${{ }}` expressions against the contexts (github, env, steps, matrix, ...)."""

    def __init__(self, contexts: Mapping[str, Any], failed: bool = False) -> None:
        self.contexts = contexts
        self.failed = failed

    def interpolate(self, text: Any) -> str:
        """A string with every `${{ expr }}` replaced by its value."""
        return re.sub(r"\$\{\{(.*?)\}\}", lambda m: _string(self.evaluate(m.group(1))), str(text))

    def condition(self, text: str) -> bool:
        """An `if:`; without a status function it implies success(), as on GitHub."""
        expr = text.strip()
        if expr.startswith("${{") and expr.endswith("}}"):
            expr = expr[3:-2]
        value = bool(self.evaluate(expr))
        if not re.search(r"\b(always|failure|success|cancelled)\(\)", expr):
            value = value and not self.failed
        return value

    def evaluate(self, expr: str) -> Any:
        tokens = self._tokens(expr)
        value, rest = self._or(tokens)
        assert not rest, f"cannot evaluate {expr!r}"
        return value

    def _tokens(self, expr: str) -> list[tuple[str, str]]:
        tokens, position = [], 0
        expr = expr.strip()
        while position < len(expr):
            match = _TOKEN.match(expr, position)
            assert match and match.end() > position, f"unsupported expression {expr!r}"
            kind = match.lastgroup or ""
            tokens.append((kind, match.group(kind)))
            position = match.end()
        return tokens

    def _or(self, tokens: list[tuple[str, str]]) -> tuple[Any, list[tuple[str, str]]]:
        left, tokens = self._and(tokens)
        while tokens and tokens[0] == ("op", "||"):
            right, tokens = self._and(tokens[1:])
            left = left or right
        return left, tokens

    def _and(self, tokens: list[tuple[str, str]]) -> tuple[Any, list[tuple[str, str]]]:
        left, tokens = self._compare(tokens)
        while tokens and tokens[0] == ("op", "&&"):
            right, tokens = self._compare(tokens[1:])
            left = left and right
        return left, tokens

    def _compare(self, tokens: list[tuple[str, str]]) -> tuple[Any, list[tuple[str, str]]]:
        left, tokens = self._unary(tokens)
        if tokens and tokens[0][1] in ("==", "!="):
            op = tokens[0][1]
            right, tokens = self._unary(tokens[1:])
            same = _string(left).lower() == _string(right).lower()
            return (same if op == "==" else not same), tokens
        return left, tokens

    def _unary(self, tokens: list[tuple[str, str]]) -> tuple[Any, list[tuple[str, str]]]:
        kind, text = tokens[0]
        if (kind, text) == ("op", "!"):
            value, rest = self._unary(tokens[1:])
            return not value, rest
        if (kind, text) == ("op", "("):
            value, rest = self._or(tokens[1:])
            assert rest and rest[0] == ("op", ")")
            return value, rest[1:]
        if kind == "str":
            return text[1:-1].replace("''", "'"), tokens[1:]
        assert kind == "name", f"unexpected {text!r}"
        if tokens[1:3] == [("op", "("), ("op", ")")]:
            status = {
                "always": True,
                "success": not self.failed,
                "failure": self.failed,
                "cancelled": False,
            }
            assert text in status, f"unsupported function {text}()"
            return status[text], tokens[3:]
        value: Any = self.contexts
        for part in text.split("."):
            value = value.get(part, "") if isinstance(value, Mapping) else ""
        return value, tokens[1:]


def _string(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)


# GitHub Actions ---------------------------------------------------------------------------------


@dataclass
class Step:
    """What one step did."""

    name: str
    outcome: str  # success | failure | skipped
    exit_code: int | None = None
    output: str = ""
    outputs: dict[str, str] = field(default_factory=dict)


@dataclass(repr=False)
class JobRun:
    """What one job run did: its steps in order and the summary it wrote."""

    steps: list[Step]
    summary: str

    def __repr__(self) -> str:  # what a failing assertion shows: each step and its log's end
        return "\n".join(
            f"--- {s.name}: {s.outcome} ({s.exit_code})\n{s.output[-1500:]}" for s in self.steps
        )

    @property
    def failed(self) -> bool:
        return any(step.outcome == "failure" for step in self.steps)

    def step(self, name: str) -> Step:
        return next(step for step in self.steps if step.name == name)


@dataclass
class Runner:
    """A machine to run jobs on: a work tree, a temp dir, a fake `gh` and the contexts."""

    workdir: Path
    temp: Path
    vars: dict[str, str]
    secrets: dict[str, str]
    github: dict[str, Any]

    def __post_init__(self) -> None:
        self.fake_bin = self.temp / "fake-bin"
        self.fake_bin.mkdir(parents=True, exist_ok=True)
        gh = self.fake_bin / "gh"
        gh.write_text(f"#!{sys.executable}\n{FAKE_GH}", encoding="utf-8")
        gh.chmod(0o755)
        self.gh_state = self.temp / "gh-state.json"
        self.count = 0

    @property
    def gh(self) -> dict[str, Any]:
        """What the fake GitHub holds: comments and issues."""
        if not self.gh_state.exists():
            return {"comments": [], "issues": [], "calls": []}
        return dict(json.loads(self.gh_state.read_text(encoding="utf-8")))

    def base_env(self) -> dict[str, str]:
        return {
            "PATH": os.pathsep.join([str(self.fake_bin), str(BIN), "/usr/bin", "/bin"]),
            "HOME": str(self.temp / "home"),
            "XDG_CACHE_HOME": str(self.temp / "cache"),
            "LANG": "C.UTF-8",
            "CI": "true",
            "RUNNER_TEMP": str(self.temp),
            "FAKE_GH_STATE": str(self.gh_state),
            "PYTHONDONTWRITEBYTECODE": "1",
        }

    def run_workflow(
        self, path: Path, job_id: str, *, matrix: Mapping[str, str] | None = None
    ) -> JobRun:
        """Run one job of a workflow, as GitHub would for the event in `github`."""
        workflow = yaml.safe_load(path.read_text(encoding="utf-8"))
        job = workflow["jobs"][job_id]
        if "matrix" in job.get("strategy", {}):
            assert matrix is not None, "a matrix job needs a matrix entry"
        self.count += 1
        summary = self.temp / f"summary-{self.count}"
        summary.write_text("")
        contexts: dict[str, Any] = {
            "github": {**self.github, "token": "fake-token"},
            "vars": self.vars,
            "secrets": self.secrets,
            "matrix": dict(matrix or {}),
            "runner": {"temp": str(self.temp)},
            "steps": {},
        }
        env = self.base_env() | {
            "GITHUB_STEP_SUMMARY": str(summary),
            "GITHUB_REPOSITORY": str(self.github["repository"]),
            "GITHUB_JOB": job_id,
        }
        for scope in (workflow.get("env", {}), job.get("env", {})):
            env |= {k: Expressions(contexts).interpolate(v) for k, v in scope.items()}
        contexts["env"] = env
        steps: list[Step] = []
        for index, spec in enumerate(job["steps"]):
            failed = any(s.outcome == "failure" for s in steps)
            name = spec.get("name") or spec.get("uses") or f"step {index}"
            expressions = Expressions(contexts, failed)
            if "if" in spec and not expressions.condition(str(spec["if"])):
                steps.append(Step(name, "skipped"))
                continue
            if not failed or "if" in spec:
                step = self._step(spec, name, contexts, env, expressions)
            else:
                step = Step(name, "skipped")
            steps.append(step)
            if "id" in spec:
                contexts["steps"][spec["id"]] = {
                    "outputs": step.outputs,
                    "outcome": step.outcome,
                }
        return JobRun(steps, summary.read_text(encoding="utf-8"))

    def _step(
        self,
        spec: Mapping[str, Any],
        name: str,
        contexts: Mapping[str, Any],
        env: Mapping[str, str],
        expressions: Expressions,
    ) -> Step:
        step_env = dict(env) | {
            k: expressions.interpolate(v) for k, v in spec.get("env", {}).items()
        }
        if "run" in spec:
            return self._bash(name, spec["run"], step_env, expressions)
        uses = str(spec["uses"])
        if uses.startswith(SKIPPED_ACTIONS):
            return Step(name, "success")
        assert OUR_ACTION.match(uses), f"the runner does not know the action {uses}"
        inputs = {k: expressions.interpolate(v) for k, v in (spec.get("with") or {}).items()}
        return self._action(name, inputs, contexts, step_env)

    def _action(
        self,
        name: str,
        given: Mapping[str, str],
        outer: Mapping[str, Any],
        env: Mapping[str, str],
    ) -> Step:
        """This repository's composite action.yml, step by step."""
        action = yaml.safe_load((ROOT / "action.yml").read_text(encoding="utf-8"))
        unknown = set(given) - set(action["inputs"])
        assert not unknown, f"the action has no input(s) {unknown}"
        inputs = {k: str(v.get("default", "")) for k, v in action["inputs"].items()} | dict(given)
        contexts: dict[str, Any] = {
            **outer,
            "inputs": inputs,
            "github": {**outer["github"], "action_path": str(ROOT)},
            "steps": {},
        }
        output = ""
        for spec in action["runs"]["steps"]:
            if spec.get("id") == "install" or str(spec.get("uses", "")).startswith(SKIPPED_ACTIONS):
                continue
            expressions = Expressions(contexts)
            step_env = dict(env) | {"GITHUB_ACTION_PATH": str(ROOT)}
            step_env |= {k: expressions.interpolate(v) for k, v in spec.get("env", {}).items()}
            step = self._bash(str(spec.get("name")), spec["run"], step_env, expressions)
            output += step.output
            contexts["steps"][spec["id"]] = {"outputs": step.outputs}
            if step.outcome == "failure":
                break  # later steps do not run; the outputs set so far still count
        outputs = {
            key: Expressions(contexts).interpolate(value["value"])
            for key, value in action["outputs"].items()
        }
        return Step(name, step.outcome, step.exit_code, output, outputs)

    def _bash(
        self, name: str, script: str, env: Mapping[str, str], expressions: Expressions
    ) -> Step:
        self.count += 1
        outputs_file = self.temp / f"output-{self.count}"
        outputs_file.write_text("")
        script_file = self.temp / f"step-{self.count}.sh"
        script_file.write_text(expressions.interpolate(script), encoding="utf-8")
        done = subprocess.run(
            ["bash", "--noprofile", "--norc", "-e", "-o", "pipefail", str(script_file)],
            cwd=self.workdir,
            env={**env, "GITHUB_OUTPUT": str(outputs_file)},
            capture_output=True,
            text=True,
            timeout=300,
        )
        outputs = dict(
            line.split("=", 1) for line in outputs_file.read_text().splitlines() if "=" in line
        )
        outcome = "success" if done.returncode == 0 else "failure"
        return Step(name, outcome, done.returncode, done.stdout + done.stderr, outputs)


# GitLab CI --------------------------------------------------------------------------------------


def run_gitlab_job(
    template: Path, job_name: str, workdir: Path, variables: Mapping[str, str], temp: Path
) -> subprocess.CompletedProcess[str]:
    """One job's before_script (less the pip install) and script, in one bash with -e, pipefail.

    `curl` is a recording fake of GitLab's notes and issues API (FAKE_CURL); what it holds is in
    `gitlab_state(temp)`.
    """
    fake_bin = temp / "fake-gitlab-bin"
    fake_bin.mkdir(parents=True, exist_ok=True)
    curl = fake_bin / "curl"
    curl.write_text(f"#!{sys.executable}\n{FAKE_CURL}", encoding="utf-8")
    curl.chmod(0o755)
    pipeline = yaml.safe_load(template.read_text(encoding="utf-8"))
    job = dict(pipeline[job_name])
    base = pipeline.get(job.pop("extends", ""), {})
    before = [line for line in base.get("before_script", []) if "pip install" not in line]
    script = "\n".join([*before, *job["script"]])
    env = {
        "PATH": os.pathsep.join([str(fake_bin), str(BIN), "/usr/bin", "/bin"]),
        "FAKE_CURL_STATE": str(temp / "gitlab-state.json"),
        "HOME": str(temp / "home"),
        "XDG_CACHE_HOME": str(temp / "cache"),
        "LANG": "C.UTF-8",
        "CI": "true",
        "PYTHONDONTWRITEBYTECODE": "1",
        **{k: str(v) for k, v in pipeline.get("variables", {}).items()},
        **variables,
    }
    return subprocess.run(
        ["bash", "--noprofile", "--norc", "-e", "-o", "pipefail", "-c", script],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def gitlab_state(temp: Path) -> dict[str, Any]:
    """What the fake GitLab holds: merge-request notes and issues."""
    path = temp / "gitlab-state.json"
    if not path.exists():
        return {"notes": [], "issues": []}
    return dict(json.loads(path.read_text(encoding="utf-8")))


# The fake `gh`: the calls the example workflows make, against a JSON file ------------------------

FAKE_GH = r"""
import json, os, re, sys
path = os.environ["FAKE_GH_STATE"]
state = json.load(open(path)) if os.path.exists(path) else {"comments": [], "issues": [], "calls": []}
args = sys.argv[1:]
state["calls"].append(args)
VALUED = {"--method", "--jq", "-F", "--state", "--label", "--json", "--title", "--body-file",
          "--color", "--description"}
def option(name):
    return args[args.index(name) + 1] if name in args else None
def positional():
    out, skip = [], False
    for arg in args[1:]:
        if skip:
            skip = False
        elif arg in VALUED:
            skip = True
        elif not arg.startswith("-"):
            out.append(arg)
    return out
def read(value):
    assert value.startswith("body=@"), value
    return open(value[len("body=@"):]).read()
if args[0] == "api":
    method, target = option("--method") or "GET", positional()[0]
    if method == "GET":
        marker = re.search(r'startswith\(\\?"(.*?)\\?"\)', option("--jq")).group(1)
        for comment in state["comments"]:
            if comment["body"].startswith(marker):
                print(comment["id"])
    elif method == "POST":
        number = int(target.split("/")[-2])
        state["comments"].append({"id": len(state["comments"]) + 1, "issue": number,
                                  "body": read(option("-F")), "edits": 0})
    elif method == "PATCH":
        comment = state["comments"][int(target.split("/")[-1]) - 1]
        comment["body"], comment["edits"] = read(option("-F")), comment["edits"] + 1
    else:
        sys.exit(f"fake gh: unsupported api call {args}")
elif args[:2] == ["label", "create"]:
    pass
elif args[:2] == ["issue", "list"]:
    found = [i for i in state["issues"] if i["open"] and option("--label") in i["labels"]]
    if found:
        print(found[0]["number"])
elif args[:2] == ["issue", "comment"]:
    issue = state["issues"][int(args[2]) - 1]
    issue["comments"].append(open(option("--body-file")).read())
elif args[:2] == ["issue", "create"]:
    state["issues"].append({"number": len(state["issues"]) + 1, "open": True,
                            "title": option("--title"), "labels": [option("--label")],
                            "body": open(option("--body-file")).read(), "comments": []})
else:
    sys.exit(f"fake gh: unsupported command {args}")
json.dump(state, open(path, "w"))
"""


# The fake `curl`: the GitLab API calls the template makes, against a JSON file ------------------

FAKE_CURL = r"""
import json, os, re, sys, urllib.parse
path = os.environ["FAKE_CURL_STATE"]
state = json.load(open(path)) if os.path.exists(path) else {"notes": [], "issues": []}
args = sys.argv[1:]
method, headers, data, url, skip = "GET", [], {}, None, None
for arg in args:
    if skip == "--request":
        method = arg
    elif skip == "--header":
        headers.append(arg)
    elif skip == "--data-urlencode":
        name, sep, value = arg.partition("=")
        if not sep:
            name, _, file = arg.partition("@")
            value = open(file).read()
        data[name] = value
    skip = arg if arg in ("--request", "--header", "--data-urlencode") else None
    if skip is None and not arg.startswith("-"):
        url = arg
if not any(h.startswith("PRIVATE-TOKEN: ") and len(h) > 15 for h in headers):
    sys.exit(22)
parsed = urllib.parse.urlsplit(url)
route = re.sub(r"^.*/projects/[^/]+", "", parsed.path)
query = urllib.parse.parse_qs(parsed.query)
out = None
if m := re.fullmatch(r"/merge_requests/(\d+)/notes", route):
    if method == "GET":
        out = [n for n in state["notes"] if n["mr"] == int(m.group(1))]
    else:
        state["notes"].append({"id": len(state["notes"]) + 1, "mr": int(m.group(1)),
                               "body": data["body"], "edits": 0})
        out = state["notes"][-1]
elif (m := re.fullmatch(r"/merge_requests/(\d+)/notes/(\d+)", route)) and method == "PUT":
    note = state["notes"][int(m.group(2)) - 1]
    note["body"], note["edits"] = data["body"], note["edits"] + 1
    out = note
elif route == "/issues" and method == "GET":
    label = query["labels"][0]
    out = [i for i in state["issues"] if i["state"] == "opened" and label in i["labels"]]
elif route == "/issues" and method == "POST":
    state["issues"].append({"iid": len(state["issues"]) + 1, "state": "opened",
                            "title": data["title"], "labels": data["labels"].split(","),
                            "description": data["description"], "notes": []})
    out = state["issues"][-1]
elif (m := re.fullmatch(r"/issues/(\d+)/notes", route)) and method == "POST":
    state["issues"][int(m.group(1)) - 1]["notes"].append(data["body"])
    out = {}
else:
    sys.exit(f"fake curl: unsupported {method} {url}")
json.dump(state, open(path, "w"))
print(json.dumps(out))
"""
