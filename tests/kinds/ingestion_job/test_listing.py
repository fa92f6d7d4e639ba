"""A job's object listing (kinds/ingestion_job/listing.py): its selector applied to a bucket
listing, capped, and the jobs listed concurrently."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from reconciler.kinds.ingestion_job.listing import Job, list_jobs
from reconciler.listing import Access
from tests.plan.test_data_plan import koalas_objects


def test_a_listing_stops_at_its_cap_and_says_at_least(s3_dir: Path) -> None:
    size = koalas_objects(s3_dir, *(f"part-{n}.json" for n in range(5)), rows=3)
    connection = {"type": "s3", "bucket": "demo-bucket", "awsEndpoint": "s3.amazonaws.com"}
    job = Job("many", {"connectionName": "c", "prefixes": ["polaris-ingest/"]}, connection)
    listing = list_jobs([job], Access(enabled=True, directory=s3_dir, max_keys=3))["many"]
    assert (listing.count, listing.complete) == (3, False)
    assert listing.note().startswith("objects in S3: at least 3 objects, at least ")
    assert listing.warnings() == ()
    whole = list_jobs([job], Access(enabled=True, directory=s3_dir))["many"]
    assert (whole.count, whole.bytes, whole.complete) == (5, size, True)


class _GatheringS3(BaseHTTPRequestHandler):
    """ListObjectsV2 that holds the first `parallelism` requests until they are all in flight,
    and counts how many ever were at once: one object per listed prefix."""

    state: dict[str, Any]

    def do_GET(self) -> None:
        state, gate = self.state, self.state["gate"]
        with gate:
            state["arrived"] += 1
            state["in_flight"] += 1
            state["most"] = max(state["most"], state["in_flight"])
            gate.notify_all()
            if state["arrived"] <= state["parallelism"]:
                # Until the last of them has arrived (all in flight then): counting arrivals, not
                # requests in flight, as the first one let through may finish before the others wake.
                gate.wait_for(lambda: state["arrived"] >= state["parallelism"], timeout=5)
        prefix = self.path.split("prefix=", 1)[1].split("&", 1)[0].replace("%2F", "/")
        body = (
            '<?xml version="1.0" encoding="UTF-8"?><ListBucketResult>'
            f"<Contents><Key>{prefix}x.json</Key><Size>7</Size></Contents>"
            "<IsTruncated>false</IsTruncated></ListBucketResult>"
        ).encode()
        with gate:
            state["in_flight"] -= 1
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


def test_jobs_are_listed_concurrently_never_more_than_parallelism_at_once() -> None:
    state: dict[str, Any] = {
        "gate": threading.Condition(), "arrived": 0, "in_flight": 0, "most": 0, "parallelism": 4,
    }  # fmt: skip
    server = ThreadingHTTPServer(("127.0.0.1", 0), type("S3", (_GatheringS3,), {"state": state}))
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        connection = {"type": "s3", "bucket": "gather", "awsEndpoint": "s3.amazonaws.com"}
        jobs = [
            Job(f"day-{n}", {"connectionName": "c", "prefixes": [f"day-{n}/"]}, connection)
            for n in range(12)
        ]
        access = Access(enabled=True, endpoint=f"http://127.0.0.1:{server.server_address[1]}")
        listed = list_jobs(jobs, access, parallelism=4)
    finally:
        server.shutdown()
        server.server_close()
    assert {name: (listing.count, listing.bytes) for name, listing in listed.items()} == {
        f"day-{n}": (1, 7) for n in range(12)
    }
    assert state["most"] == 4
