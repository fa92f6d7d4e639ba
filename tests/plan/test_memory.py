"""What a plan keeps of each job: one compared form per spec, and only the fields of a live job
that its identity and comparison need (a plan of 10,000 jobs holds them all until rendered)."""

from __future__ import annotations

import contextlib
import json
import sys
from pathlib import Path
from typing import Any

import pytest

from reconciler import client as client_module
from reconciler.client import ClientConfig, PolarisClient
from reconciler.emulator import DEMO_API_KEY, DEMO_PROJECT_ID, Emulator
from reconciler.kinds.ingestion_job import JOB_SPEC, JobCache, compared_form, job_identity, jobs_of
from reconciler.kinds.ingestion_job.identity import place_of
from reconciler.live import read_live
from reconciler.manager import Loader, Manager, PlanRun, connected
from reconciler.model import Action, Kind
from reconciler.plan import make_plan
from tests.builders import job_spec, live_connection, live_job, live_state, resource, s3
from tests.cli import run
from tests.fixtures import (
    DEMO_SECRETS,
    IN_PROCESS_HOSTS,
    external_connection_exists,
    traced_peak,
)
from tests.steps import apply_all, edit


def test_a_job_in_sync_shares_one_compared_form_with_the_live_job_it_matches() -> None:
    spec = job_spec()
    job = live_job(spec)
    plan = make_plan(
        [resource(Kind.INGESTION_JOB, "j", spec)],
        live_state({"zoo": live_connection("zoo")}, jobs=[job]),
    )
    (change,) = plan.changes
    assert change.action is Action.NOOP
    assert change.before is job.compared and change.desired is job.compared
    assert job.compared == JOB_SPEC.normalize(spec)


def test_a_resubmitted_job_shows_each_body_as_normalized_in_its_own_key_order() -> None:
    # Polaris may echo a request with defaults filled in and fields in another order: the plan
    # shows the live body and the manifest's each as normalized, never one in place of the other.
    spec = job_spec()
    echoed = {"maxParseExceptions": 2147483647, "ingestionMode": "append", **spec}
    job = live_job(echoed, "failed", health={"status": "error", "code": "E", "message": "m"})
    plan = make_plan(
        [resource(Kind.INGESTION_JOB, "j", spec)],
        live_state({"zoo": live_connection("zoo")}, jobs=[job]),
    )
    (change,) = plan.changes
    assert change.action is Action.RESUBMIT
    entry = change.to_json()
    assert json.dumps(entry["before"]) == json.dumps(JOB_SPEC.normalize(echoed))
    assert json.dumps(entry["desired"]) == json.dumps(JOB_SPEC.normalize(spec))
    assert list(entry["before"]) != list(entry["desired"])


def test_a_live_job_keeps_only_what_its_identity_and_comparison_need() -> None:
    spec = job_spec()
    connection = live_connection("zoo", s3())
    job = live_job(spec, connections={"zoo": connection})
    assert set(job.body) == {"id", "executionStatus", "health", "createdTimestamp", "spec"}
    assert job.spec is job.compared and job.body["spec"] is job.compared
    # The identity is still taken from the request as Polaris returned it.
    assert job.identity == job_identity(compared_form(spec), place_of(connection))


def test_a_job_cache_lets_go_of_its_jobs_after_a_read_and_the_next_read_finds_them_on_disk(
    tmp_path: Path, emulator: Emulator, client: PolarisClient
) -> None:
    client.create_connection({"name": "zoo", **s3()})
    spec = {**job_spec(), "createTableIfNotExists": True}
    client.create_job(spec)
    list(client.iter_jobs(type="batch"))  # instant timing: the job is completed once read
    resources = [resource(Kind.CONNECTION, "zoo", s3()), resource(Kind.INGESTION_JOB, "j", spec)]
    cache = JobCache(tmp_path / "jobs.json")
    first = read_live(client, resources, cache=cache)
    assert cache.loaded is None  # released: the plan keeps only each job's compared form
    emulator.reset_requests()
    second = read_live(client, resources, cache=cache)
    reads = [path for method, path, _ in emulator.requests if "/jobs/" in path]
    assert reads == []  # from the file written by the first read
    assert [job.identity for job in jobs_of(second).jobs] == [
        job.identity for job in jobs_of(first).jobs
    ]
    assert jobs_of(second).jobs[0].compared == jobs_of(first).jobs[0].compared


def test_a_job_cache_reads_the_file_it_wrote_and_the_single_line_file_an_older_version_wrote(
    tmp_path: Path,
) -> None:
    jobs = [
        {"id": f"id-{n}", "executionStatus": "completed", "spec": {**job_spec(), "n": "a\nb"}}
        for n in range(3)
    ]
    path = tmp_path / "jobs.json"
    written = JobCache(path)
    for job in jobs:
        written.put(job)
    written.close()
    assert json.loads(path.read_text())["jobs"] == {job["id"]: job for job in jobs}
    assert [JobCache(path).get(str(job["id"])) for job in jobs] == jobs
    older = tmp_path / "older.json"
    older.write_text(json.dumps({"format": 2, "jobs": {job["id"]: job for job in jobs}}))
    assert [JobCache(older).get(str(job["id"])) for job in jobs] == jobs
    assert JobCache(older).get("id-9") is None


def test_a_damaged_job_cache_line_is_a_job_to_read_again_and_a_damaged_file_is_ignored(
    tmp_path: Path,
) -> None:
    path = tmp_path / "jobs.json"
    cache = JobCache(path)
    for n in range(2):
        cache.put({"id": f"id-{n}", "executionStatus": "failed", "spec": job_spec()})
    cache.close()
    path.write_text(path.read_text().replace('"id-1","executionStatus"', '"id-1",,"executi'))
    assert JobCache(path).get("id-0") is not None
    assert JobCache(path).get("id-1") is None
    path.write_text(path.read_text()[:-1])
    assert JobCache(path).get("id-0") is None


def test_a_plan_in_json_holds_little_more_than_its_text_while_it_is_encoded() -> None:
    # json.dumps keeps every piece it encodes (each key, comma and indent) until it joins them:
    # for a plan of 10,000 jobs that list of small strings was the peak of the whole run.
    from reconciler.output import Output

    jobs = {f"job-{i}": {"action": "noop", "desired": job_spec()} for i in range(2_000)}
    out = Output(lambda text: text.replace("zoo", "(sensitive)"))
    expected = json.dumps(out.data(jobs), indent=2, ensure_ascii=False)
    text, peak = traced_peak(lambda: out.json(jobs))
    assert text == expected
    # The redacted copy of the value, the text itself, and a bounded batch of pieces.
    assert peak < 4 * len(text)


def test_saving_the_job_cache_writes_it_a_line_at_a_time(tmp_path: Path) -> None:
    # Saved when a read ends, the moment a plan of 10,000 jobs holds the most: the whole text
    # built at once was twice the cached jobs again.
    import tracemalloc

    cache = JobCache(tmp_path / "jobs.json")
    jobs = [
        {"id": f"job-{i}", "executionStatus": "completed", "spec": job_spec()} for i in range(3_000)
    ]
    for job in jobs:
        cache.put(job)
    size = sum(len(json.dumps(job)) for job in jobs)
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        cache.save()
        peak = tracemalloc.get_traced_memory()[1] - before
    finally:
        tracemalloc.stop()
    assert peak < size / 4
    again = JobCache(tmp_path / "jobs.json")
    assert [again.get(str(job["id"])) for job in jobs] == jobs


def test_a_plan_in_json_is_encoded_without_a_redacted_copy_of_its_value() -> None:
    # Each string is redacted as it is encoded: a redacted copy of the whole value first was
    # half again the text, at the moment a plan of 10,000 jobs holds the most.
    import tracemalloc

    from reconciler.output import Output

    jobs = {f"job-{i}": {"action": "noop", "desired": job_spec()} for i in range(2_000)}
    out = Output(lambda text: text.replace("zoo", "(sensitive)"))
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        text = out.json(jobs)
        peak = tracemalloc.get_traced_memory()[1] - before
    finally:
        tracemalloc.stop()
    assert "(sensitive)" in text and "zoo" not in text
    # The text, the joined batches it is made of, and one batch of pieces.
    assert peak < 2.3 * len(text)


def test_a_json_plan_on_stdout_is_the_text_json_dumps_makes_of_the_plan(
    served: Any, workspace: Path, client: PolarisClient
) -> None:
    # The CLI builds the plan's JSON once and encodes it as it redacts: byte for byte what
    # json.dumps writes of the plan (which holds no secret value to redact), for a plan with
    # updates and creations as for a settled one.
    external_connection_exists(client)
    apply_all()
    edit(
        workspace / "weblogs" / "tables.yaml",
        "    - name: latency_ms\n",
        "    - name: region\n      dataType: string\n    - name: latency_ms\n",
    )
    (workspace / "more.yaml").write_text(
        "apiVersion: reconciler/v1\nkind: Connection\nmetadata: {name: cafe-new}\n"
        "spec: {type: s3, bucket: b\u00fccket, awsEndpoint: s3.us-east-1.amazonaws.com,"
        " description: 'tab\\t \"quoted\" \u65e5\u672c'}\n",
        encoding="utf-8",
    )
    config = ClientConfig(
        url=served.url, project=DEMO_PROJECT_ID, api_key=DEMO_API_KEY, insecure=True,
        allowed_hosts=IN_PROCESS_HOSTS,
    )  # fmt: skip
    with PolarisClient(config) as polaris:
        manager = Manager(connect=connected(polaris), load=Loader(DEMO_SECRETS))
        planned = manager.plan(PlanRun(("manifests",)))
    assert {c.action for c in planned.plan.changes} >= {Action.NOOP, Action.CREATE, Action.UPDATE}
    result = run("plan", "manifests", "--format", "json")
    assert result.exit_code == 0, result.stderr
    assert result.stdout == json.dumps(planned.plan.to_json(), indent=2, ensure_ascii=False) + "\n"
    with_requests = run("plan", "manifests", "--format", "json", "--show-requests").json()
    assert with_requests.pop("requests")
    assert with_requests == json.loads(result.stdout)


def test_a_long_result_is_written_to_stdout_without_copies_of_its_text(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # click.echo adds the newline to a copy of the text and the stream encodes all of it at
    # once: for a 5 MB plan, two more copies at the run's peak. Written a piece at a time.
    import tracemalloc

    from reconciler.cli_output import echo

    text = "".join(f'  "line {i}": "\u65e5\x1b[1mbold\x1b[0m",\n' for i in range(60_000))[:-1]
    with (tmp_path / "stdout").open("w", encoding="utf-8") as stdout:
        monkeypatch.setattr(sys, "stdout", stdout)
        tracemalloc.start()
        try:
            before = tracemalloc.get_traced_memory()[0]
            echo(text)
            peak = tracemalloc.get_traced_memory()[1] - before
        finally:
            tracemalloc.stop()
    # Byte for byte what one click.echo writes to a file: colours stripped, one newline added.
    expected = text.replace("\x1b[1m", "").replace("\x1b[0m", "") + "\n"
    assert (tmp_path / "stdout").read_text(encoding="utf-8") == expected
    assert peak < len(text) / 2  # a piece and what click makes of it; the text is 4 MB


def test_a_plan_lets_go_of_each_job_as_polaris_returned_it_once_the_job_is_resolved(
    emulator: Emulator, client: PolarisClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Only `reconciler import` keeps the requests as returned (to write manifests from): a plan
    # that kept every decoded answer until the read ended held 45 MB more at 10,000 jobs.
    import gc
    import tracemalloc

    client.create_connection({"name": "zoo", **s3()})
    jobs = 200
    for i in range(jobs):
        client.create_job({**job_spec(objects=[f"day-{i}.json"]), "createTableIfNotExists": True})
    list(client.iter_jobs(type="batch"))  # instant timing: every job is completed once read
    spec = {**job_spec(), "createTableIfNotExists": True}
    resources = [resource(Kind.CONNECTION, "zoo", s3()), resource(Kind.INGESTION_JOB, "j", spec)]

    def traced(full: frozenset[Kind]) -> tuple[int, int]:
        """What one read keeps, and its peak above where it started. A read of the same jobs
        just before has interned their strings: the interpreter's table of interned strings
        grows in steps, and a step inside the window outweighed the read (`kept` 2.8 MB instead
        of 0.8), or not, depending on the tests that ran before in the same process."""
        # One worker: one answer in flight at a time, whatever the machine's load.
        read_live(client, resources, parallelism=1, full=full)
        gc.collect()
        tracemalloc.start()
        try:
            before = tracemalloc.get_traced_memory()[0]
            live = read_live(client, resources, parallelism=1, full=full)
            gc.collect()
            kept = tracemalloc.get_traced_memory()[0] - before
            peak = tracemalloc.get_traced_memory()[1] - before
        finally:
            tracemalloc.stop()
        assert len(jobs_of(live).jobs) == jobs
        assert (jobs_of(live).requests == {}) == (not full)
        return kept, peak

    # Pages of 20: a page of all 200 jobs was as large as every answer, and hid them.
    monkeypatch.setattr(client_module, "PAGE_SIZE", 20)
    kept, peak = traced(frozenset())
    kept_by_import, _ = traced(frozenset({Kind.INGESTION_JOB}))
    answers = kept_by_import - kept  # every job as Polaris returned it, as import keeps them
    # While it reads, a plan holds a page and the answer in flight: 0.21 of every answer here.
    # Keeping every answer until the read ends (and letting go then) made it 1.09.
    assert peak - kept < answers / 2


def test_a_live_job_whose_request_is_a_manifest_jobs_spec_holds_the_manifests_compared_form(
    emulator: Emulator, client: PolarisClient
) -> None:
    # One compared form per spec: a plan of 10,000 jobs in sync held two (15 MB more).
    client.create_connection({"name": "zoo", **s3()})
    spec = {**job_spec(), "createTableIfNotExists": True}
    other = {**job_spec(objects=["day-2.json"]), "createTableIfNotExists": True}
    client.create_job(spec)
    client.create_job(other)
    mine = resource(Kind.INGESTION_JOB, "j", spec)
    resources = [resource(Kind.CONNECTION, "zoo", s3()), mine]
    jobs = {
        job.spec["source"]["objects"][0]: job for job in jobs_of(read_live(client, resources)).jobs
    }
    assert jobs["penguins/adelaide.json"].compared is mine.compared
    assert jobs["penguins/adelaide.json"].body["spec"] is mine.compared
    # A job no manifest declares keeps its own.
    assert jobs["day-2.json"].compared == compared_form(other)
    plan = make_plan(resources, read_live(client, resources))
    (change,) = [c for c in plan.changes if c.kind is Kind.INGESTION_JOB]
    assert change.action is Action.NOOP and change.before is mine.compared


def test_the_manifest_jobs_a_plan_keeps_hold_each_repeated_name_and_value_once(
    tmp_path: Path,
) -> None:
    # Each scalar of a parsed file is its own string: 10,000 jobs held 340,000 of them, with
    # 10,000 distinct values (18 MB). A plan keeps every job until it is rendered.
    from reconciler.validate import load_manifests

    documents = [
        "apiVersion: reconciler/v1\nkind: IngestionJob\n"
        f"metadata: {{name: job-{i}}}\nspec:\n"
        "  type: batch\n  target: {type: table, tableName: t}\n  createTableIfNotExists: true\n"
        "  source:\n    type: s3\n    connectionName: zoo\n"
        f"    uris: ['s3://b/{i}.json']\n"
        "    formatSettings: {format: nd-json}\n"
        "    inputSchema: [{name: ts, dataType: string}]\n"
        "  mappings: [{columnName: __time, expression: 'TIME_PARSE(\"ts\")'}]\n"
        for i in range(2)
    ]
    connection = "apiVersion: reconciler/v1\nkind: Connection\nmetadata: {name: zoo}\nspec:\n"
    connection += "  type: s3\n  bucket: b\n  awsEndpoint: s3.us-east-1.amazonaws.com\n"
    (tmp_path / "jobs.yaml").write_text("---\n".join([connection, *documents]))
    jobs = load_manifests([str(tmp_path)], {}).of_kind(Kind.INGESTION_JOB)
    first, second = (job.spec for job in jobs)
    assert first["source"]["type"] is second["source"]["type"]
    assert first["mappings"][0]["expression"] is second["mappings"][0]["expression"]
    keys = [
        next(key for key in spec["source"] if key == "connectionName") for spec in (first, second)
    ]
    assert keys[0] is keys[1]
    # What its compared form leaves as written is the spec's own.
    assert jobs[0].compared is not None
    assert jobs[0].compared["source"]["uris"][0] is first["source"]["uris"][0]


def test_a_plan_finds_the_same_mistakes_in_a_manifest_as_validate_with_its_strings_interned() -> (
    None
):
    # A plan interns the values it loads and validate does not: every value keeps its type
    # (a key that is not a string stays one), so both report the same errors at the same lines.
    from reconciler.model import ManifestErrors
    from reconciler.validate import load_manifests
    from tests.manifest.test_bad_manifests import CORPUS, environment

    def mistakes(path: Path, keep_compared: bool) -> list[Any]:
        try:
            loaded = load_manifests([str(path)], environment(path), keep_compared=keep_compared)
        except ManifestErrors as errors:
            return list(errors.errors)
        return list(loaded.warnings)

    for path in CORPUS:
        assert mistakes(path, True) == mistakes(path, False), path.name


def test_a_job_cache_writes_each_job_it_is_given_as_it_comes_and_holds_only_their_ids(
    tmp_path: Path,
) -> None:
    # Held as text until the read ended, the jobs of a plan of 10,000 were 6 MB more at the
    # moment it held the most.
    import tracemalloc

    path = tmp_path / "jobs.json"
    old = JobCache(path)
    old.put({"id": "old", "executionStatus": "failed", "spec": job_spec()})
    old.close()
    cache = JobCache(path)
    assert cache.get("old") is not None
    jobs = [
        {"id": f"job-{i}", "executionStatus": "completed", "spec": job_spec(objects=[f"{i}.json"])}
        for i in range(3_000)
    ]
    size = sum(len(json.dumps(job)) for job in jobs)
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for job in jobs:
            cache.put(job)
        kept = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert kept < size / 8
    cache.put({"id": "job-0", "executionStatus": "completed", "spec": job_spec()})  # again
    cache.put({"id": "running", "executionStatus": "running", "spec": job_spec()})  # not kept
    cache.close()
    again = JobCache(path)
    assert [again.get(str(job["id"])) for job in jobs[1:]] == jobs[1:]
    assert again.get("job-0") is not None and again.get("old") is not None
    assert again.get("running") is None
    assert sorted(json.loads(path.read_text())["jobs"]) == sorted(["old", *(j["id"] for j in jobs)])


def test_live_jobs_on_one_connection_share_its_place_and_the_names_they_repeat(
    emulator: Emulator, client: PolarisClient
) -> None:
    # Each of 10,000 live jobs held its own place (three objects) and its own copies of its
    # table's, connection's and status's names.
    client.create_connection({"name": "zoo", **s3()})
    for i in range(3):
        client.create_job({**job_spec(objects=[f"day-{i}.json"]), "createTableIfNotExists": True})
    list(client.iter_jobs(type="batch"))  # instant timing: every job is completed once read
    spec = {**job_spec(), "createTableIfNotExists": True}
    resources = [resource(Kind.CONNECTION, "zoo", s3()), resource(Kind.INGESTION_JOB, "j", spec)]
    first, *others = jobs_of(read_live(client, resources)).jobs
    assert others
    for job in others:
        assert job.place is not None and job.place is first.place
        assert (job.table, job.connection, job.status) == (
            first.table,
            first.connection,
            "completed",
        )
        assert job.table is first.table and job.connection is first.connection
        assert job.status is first.status
        assert job.reads is not None and first.reads is not None
        assert job.reads.keys[0].bucket is first.reads.keys[0].bucket


def test_a_manifest_jobs_compared_form_shares_what_normalizing_leaves_as_written() -> None:
    # A plan keeps every manifest job's compared form beside its spec: the parts normalizing
    # leaves unchanged were copies (5 MB at 10,000 jobs).
    spec = job_spec(uris=["s3://b/a.json", "s3://b/b.json"])
    spec["source"]["inputSchema"].sort(key=lambda field: field["name"])
    compared = compared_form(spec)
    assert compared == JOB_SPEC.normalize(spec)
    assert compared["target"] is spec["target"]
    source = compared["source"]
    assert source["formatSettings"] is spec["source"]["formatSettings"]
    assert source["uris"] is spec["source"]["uris"]
    assert source["inputSchema"] is spec["source"]["inputSchema"]
    # What it changes is its own, and the spec is left as it was.
    unsorted = job_spec(uris=["s3://b/b.json", "s3://b/a.json"])
    unsorted["target"]["intervals"] = []
    unsorted["source"]["formatSettings"] = {"format": "csv"}
    compared = compared_form(unsorted)
    assert compared["source"]["uris"] == ["s3://b/a.json", "s3://b/b.json"]
    assert unsorted["source"]["uris"] == ["s3://b/b.json", "s3://b/a.json"]
    assert "intervals" not in compared["target"] and unsorted["target"]["intervals"] == []
    assert compared["source"]["formatSettings"]["delimiter"] == ","
    assert unsorted["source"]["formatSettings"] == {"format": "csv"}


def test_a_job_cache_that_cannot_write_keeps_the_jobs_it_is_given_and_the_read_goes_on(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / "not-a-directory").write_text("")
    cache = JobCache(tmp_path / "not-a-directory" / "jobs.json")
    job = {"id": "job-1", "executionStatus": "completed", "spec": job_spec()}
    cache.put(job)
    assert cache.get("job-1") == job  # kept here, having nowhere to write it
    cache.close()
    assert "cannot write the job cache" in caplog.text
    assert cache.get("job-1") == job
    # Written as they came, then the cache could not be saved: they are read back, kept here.
    directory = tmp_path / "cache"
    cache = JobCache(directory / "jobs.json")
    cache.put(job)
    directory.rename(tmp_path / "moved")
    directory.write_text("")
    cache.close()
    assert cache.get("job-1") == job


def test_what_a_read_of_live_state_holds_is_freed_when_let_go_without_the_cyclic_collector(
    emulator: Emulator, client: PolarisClient
) -> None:
    # A plan pauses the collector (it makes no cycles to find): what it read must then be freed
    # by reference counting alone, as in any process that reads more than once (these tests).
    import gc
    import weakref

    client.create_connection({"name": "zoo", **s3()})
    client.create_job({**job_spec(), "createTableIfNotExists": True})
    spec = {**job_spec(), "createTableIfNotExists": True}
    resources = [resource(Kind.CONNECTION, "zoo", s3()), resource(Kind.INGESTION_JOB, "j", spec)]
    gc.collect()
    gc.disable()
    try:
        live = read_live(client, resources, parallelism=2)
        jobs = weakref.ref(jobs_of(live))
        assert jobs() is not None and len(jobs_of(live).jobs) == 1
        del live
        assert jobs() is None
    finally:
        gc.enable()


def test_plan_and_drift_read_live_state_with_the_cyclic_collector_paused(
    served: Any, workspace: Path, client: PolarisClient, emulator: Emulator
) -> None:
    # Passes over the growing heap of a read of 10,000 jobs took 150 ms of a cold plan of 1,000
    # (90 ms of them full ones), to find nothing: reading and planning make no cycles.
    import gc

    external_connection_exists(client)
    collecting: list[bool] = []  # whether the collector ran, as each answer was sent
    observer = emulator.response_observer

    def observed(method: str, path: str, status: int, body: bytes) -> None:
        collecting.append(gc.isenabled())
        if observer is not None:
            observer(method, path, status, body)

    emulator.response_observer = observed
    for command in ("plan", "drift"):
        result = run(command, "--format", "json", str(workspace))
        assert result.exit_code in (0, 2), result.stderr
    assert collecting and not any(collecting)
    assert gc.isenabled()  # and it runs again once they are done


@pytest.mark.parametrize("path", ["direct", "httpx"])
def test_a_read_of_live_state_leaves_no_garbage_cycle_for_each_request(
    emulator: Emulator, client: PolarisClient, path: str
) -> None:
    # A plan pauses the cyclic collector while it reads: a cycle made for each request (a
    # nested function that calls itself, httpx's stream and its response) would be kept, with
    # the answer's body, 10,000 times at 10,000 jobs. GETs over a socket take the direct path;
    # the in-process transport, httpx's.
    import gc

    client.create_connection({"name": "zoo", **s3()})
    jobs = 200
    for i in range(jobs):
        client.create_job({**job_spec(objects=[f"day-{i}.json"]), "createTableIfNotExists": True})
    spec = {**job_spec(), "createTableIfNotExists": True}
    resources = [resource(Kind.CONNECTION, "zoo", s3()), resource(Kind.INGESTION_JOB, "j", spec)]
    with contextlib.ExitStack() as stack:
        reader = client
        if path == "direct":
            server = stack.enter_context(emulator.serve())
            config = ClientConfig(url=server.url, project=DEMO_PROJECT_ID, api_key=DEMO_API_KEY)
            reader = stack.enter_context(PolarisClient(config, sleep=lambda seconds: None))
        gc.collect()
        gc.disable()
        try:
            live = read_live(reader, resources, parallelism=4)
            assert len(jobs_of(live).jobs) == jobs
            del live
            left = gc.collect()
        finally:
            gc.enable()
    assert left < jobs / 10, f"{left} objects in cycles after reading {jobs} jobs"
