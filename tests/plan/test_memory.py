"""What a plan keeps of each job: one compared form per spec, and only the fields of a live job
that its identity and comparison need (a plan of 10,000 jobs holds them all until rendered)."""

from __future__ import annotations

import json
from pathlib import Path

from reconciler.client import PolarisClient
from reconciler.emulator import Emulator
from reconciler.identity import place_of
from reconciler.kinds.ingestion_job import JOB_SPEC, JobCache, compared_form, job_identity
from reconciler.live import read_live
from reconciler.model import Action, Kind
from reconciler.plan import make_plan
from tests.builders import job_spec, live_connection, live_job, live_state, resource, s3


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
    assert [job.identity for job in second.jobs] == [job.identity for job in first.jobs]
    assert second.jobs[0].compared == first.jobs[0].compared


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
    import tracemalloc

    from reconciler.output import Output

    jobs = {f"job-{i}": {"action": "noop", "desired": job_spec()} for i in range(2_000)}
    out = Output(lambda text: text.replace("zoo", "(sensitive)"))
    expected = json.dumps(out.data(jobs), indent=2, ensure_ascii=False)
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        text = out.json(jobs)
        peak = tracemalloc.get_traced_memory()[1] - before
    finally:
        tracemalloc.stop()
    assert text == expected
    # The redacted copy of the value, the text itself, and a bounded batch of pieces.
    assert peak < 4 * len(text)


def test_saving_the_job_cache_writes_it_a_line_at_a_time(tmp_path: Path) -> None:
    # Saved when a read ends, the moment a plan of 10,000 jobs holds the most: the whole text
    # built at once was twice the cached jobs again.
    import tracemalloc

    cache = JobCache(tmp_path / "jobs.json")
    for i in range(3_000):
        cache.put({"id": f"job-{i}", "executionStatus": "completed", "spec": job_spec()})
    size = sum(len(text) for text in cache.entries.values())
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        cache.save()
        peak = tracemalloc.get_traced_memory()[1] - before
    finally:
        tracemalloc.stop()
    assert peak < size / 4
    again = JobCache(tmp_path / "jobs.json")
    assert again.entries == cache.entries
