"""U1, U2 for a large file on a worker (billing.usage_import.run_import_job): the import and
its outcome commit together, a job delivered twice imports once, and a job whose hand-over to
the broker was lost is handed over again by the sweep."""

from datetime import UTC, date, datetime, timedelta

import pytest
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import OperationalError
from django.urls import reverse
from django.utils import timezone
from kombu.exceptions import OperationalError as BrokerUnavailable

from billing import services, tasks, usage_import
from billing.models import Usage, UsageImportJob

from .factories import workspace


class WorkerLost(BaseException):
    """The worker process dies (killed, out of memory): nothing after this point runs."""


def queued_job(content: bytes) -> UsageImportJob:
    upload = SimpleUploadedFile("big.csv", content)
    return usage_import.start_import_job(upload, by=None, run_later=lambda job_id: None)


def test_u1_u2_a_job_delivered_again_after_its_worker_died_imports_once(
    db, monkeypatch, django_capture_on_commit_callbacks
):
    """The job imports alpha's January = 1,000; its worker dies before anything more, and the
    task (acks_late) is delivered again after the pipeline reported the newer running total
    1,500. The import had committed on its own, the job stayed "running", and the second
    delivery put 1,000 back: 500 MTUs gone from the bill. Now the import commits with its
    outcome: had the worker died before, nothing of it would be in."""
    ws = workspace(slug="alpha", as_of=date(2026, 1, 1))
    job = queued_job(b"workspace,month,mtus\nalpha,2026-01,1000\n")

    real_import = usage_import.import_usage

    def import_then_die(*args, **kwargs):
        real_import(*args, **kwargs)
        raise WorkerLost  # after the import, before the job's outcome is recorded

    monkeypatch.setattr(usage_import, "import_usage", import_then_die)
    with pytest.raises(WorkerLost):
        usage_import.run_import_job(job.pk)
    # Nothing of it committed: the job is still to do, the figure not in.
    assert not Usage.objects.exists()
    assert UsageImportJob.objects.get(pk=job.pk).status == "running"

    monkeypatch.setattr(usage_import, "import_usage", real_import)
    with django_capture_on_commit_callbacks(execute=True):
        assert usage_import.run_import_job(job.pk).status == "done"  # delivered again
    assert Usage.objects.get(workspace=ws).mtus == 1000

    services.record_usage(ws, month=date(2026, 1, 1), mtus=1500)  # the newer running total
    assert usage_import.run_import_job(job.pk) is None  # and once more: finished, left alone
    assert Usage.objects.get(workspace=ws).mtus == 1500
    assert not UsageImportJob.objects.get(pk=job.pk).file  # the upload is gone once done


def test_u2_i6_a_job_with_a_5000_digit_figure_is_refused_naming_the_line(db):
    workspace(slug="alpha")
    job = queued_job(b"workspace,month,mtus\nalpha,2026-01," + b"9" * 5000 + b"\n")
    job = usage_import.run_import_job(job.pk)
    assert (job.status, job.bad_lines) == ("refused", 1)
    assert job.errors[0].startswith("Line 2: a figure of 5,000 digits is more than")


def test_u2_a_job_refuses_a_month_after_the_day_it_was_uploaded(db):
    workspace(slug="alpha")
    job = queued_job(b"workspace,month,mtus\nalpha,2026-01,5\nalpha,2099-12,9\n")
    UsageImportJob.objects.filter(pk=job.pk).update(
        created_at=datetime(2026, 12, 4, 23, 59, tzinfo=UTC)
    )
    job = usage_import.run_import_job(job.pk)
    assert (job.status, job.errors) == (
        "refused",
        ["Line 3: 2099-12 has not started: usage is reported for months up to 2026-12 (a typo?)."],
    )


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_u2_a_large_upload_with_the_broker_down_waits_for_the_sweep(client, support, monkeypatch):
    """The job's row committed, then handing it to the broker failed in the commit hook: the
    page answered 500 and the job stayed queued with no task behind it."""
    monkeypatch.setattr(usage_import, "INLINE_MAX_BYTES", 10)  # every upload goes to a worker

    def broker_down(*args, **kwargs):
        raise BrokerUnavailable("Error 111 connecting to 127.0.0.1:6379. Connection refused.")

    monkeypatch.setattr(tasks.import_usage_file, "delay", broker_down)
    workspace(slug="alpha")
    client.force_login(support)
    upload = SimpleUploadedFile("big.csv", b"workspace,month,mtus\nalpha,2026-01,10\n")
    response = client.post(reverse("admin:billing_usage_import"), {"file": upload})
    job = UsageImportJob.objects.get()
    assert response.url == reverse("admin:billing_usage_import_job", args=[job.pk])
    assert "Waiting for a worker" in client.get(response.url).content.decode()

    handed = []
    now = timezone.now()
    # Not stuck yet: a worker may simply be busy.
    assert usage_import.hand_over_stuck_jobs(now=now, run_later=handed.append) == 0
    # Still down a quarter of an hour on: the sweep tries, and leaves it for the next sweep.
    later = now + timedelta(minutes=16)
    assert usage_import.hand_over_stuck_jobs(now=later, run_later=broker_down) == 0
    # Back up: handed over once, and the worker imports it.
    assert usage_import.hand_over_stuck_jobs(now=later, run_later=handed.append) == 1
    assert handed == [job.pk]
    assert usage_import.run_import_job(job.pk).status == "done"
    assert Usage.objects.get().mtus == 10
    assert usage_import.hand_over_stuck_jobs(now=later, run_later=handed.append) == 0


def test_u2_the_sweep_of_import_jobs_runs_on_the_beat():
    [entry] = [
        e
        for e in settings.CELERY_BEAT_SCHEDULE.values()
        if e["task"] == "billing.tasks.sweep_stuck_import_jobs"
    ]
    assert entry["schedule"].minute == set(range(0, 60, 5))


def test_r4_a_job_keeps_who_uploaded_the_file_in_the_usage_history(db, support):
    """R4: a large file imported by a worker: its figures' history names who uploaded it and
    the file, as an import while the page waits does."""
    ws = workspace(slug="alpha", as_of=date(2026, 1, 1))
    upload = SimpleUploadedFile("big-january.csv", b"workspace,month,mtus\nalpha,2026-01,1000\n")
    job = usage_import.start_import_job(upload, by=support, run_later=lambda job_id: None)
    assert usage_import.run_import_job(job.pk).status == "done"
    (row,) = Usage.objects.get(workspace=ws).history.all()
    assert (row.mtus, row.history_type, row.history_user) == (1000, "+", support)
    assert row.history_change_reason == f"Usage import of big-january.csv (job {job.pk})"


def test_u2_a_job_whose_worker_died_with_its_message_lost_is_handed_over_and_imported(db):
    """A job "running" for three hours: its worker died (none runs past the task's time
    limit) and the broker lost its message. The sweep handed over only queued jobs, so it
    stayed running forever, its figures never in. It is now handed over and imported."""
    ws = workspace(slug="alpha", as_of=date(2026, 1, 1))
    job = queued_job(b"workspace,month,mtus\nalpha,2026-01,10\n")
    hours_ago = timezone.now() - timedelta(hours=3)
    UsageImportJob.objects.filter(pk=job.pk).update(
        status=UsageImportJob.Status.RUNNING, started_at=hours_ago
    )
    recent = queued_job(b"workspace,month,mtus\nalpha,2026-02,10\n")
    UsageImportJob.objects.filter(pk=recent.pk).update(
        status=UsageImportJob.Status.RUNNING, started_at=timezone.now() - timedelta(minutes=30)
    )
    handed = []
    assert usage_import.hand_over_stuck_jobs(now=timezone.now(), run_later=handed.append) == 1
    assert handed == [job.pk]  # the one running for half an hour may still be on its way
    assert usage_import.run_import_job(job.pk).status == "done"
    assert Usage.objects.get(workspace=ws).mtus == 10
    assert usage_import.run_import_job(recent.pk) is not None  # its own delivery still works


def test_u2_an_upload_whose_job_is_not_saved_leaves_no_file(
    db, settings, tmp_path, support, monkeypatch
):
    """start_import_job wrote the uploaded usage file to PRIVATE_MEDIA_ROOT, then inserted its
    job. When that insert failed (the connection dropped, a statement timeout) the transaction
    rolled back and the file stayed on disk under a random name no row names, never deleted:
    1 file left, with customer usage in it. It is stored as documents are
    (`stored_until_rollback`): 0 files."""
    settings.PRIVATE_MEDIA_ROOT = settings.MEDIA_ROOT = tmp_path
    upload = SimpleUploadedFile("usage.csv", b"workspace,month,mtus\nalpha,2026-01,1000\n")

    def connection_lost(self, *args, **kwargs):
        raise OperationalError("server closed the connection unexpectedly")

    monkeypatch.setattr(UsageImportJob, "save", connection_lost)
    with pytest.raises(OperationalError):
        usage_import.start_import_job(upload, by=support, run_later=lambda job_id: None)

    assert [p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*") if p.is_file()] == []
    assert not UsageImportJob.objects.exists()


def test_u1_a_job_held_up_does_not_put_back_figures_reported_after_its_upload(
    db, django_capture_on_commit_callbacks
):
    """Ops walk: a file uploaded while the broker was down waited for the sweep (15–20
    minutes); meanwhile a newer file was imported, and the sweep's late run put the older
    figures back ("301 replaced"): the close would bill less than was reported. U1: the later
    report wins. The held-up file's lines whose figures changed after its upload are refused
    (the whole file, U2), the newer figures stay; an unchanged figure and one reported before
    the upload are no reason to refuse."""
    alpha = workspace(slug="alpha", as_of=date(2026, 1, 1))
    beta = workspace(slug="beta", as_of=date(2026, 1, 1))
    JAN = date(2026, 1, 1)
    services.record_usage(beta, month=JAN, mtus=700)  # before the upload
    held_up = queued_job(b"workspace,month,mtus\nalpha,2026-01,4000\nbeta,2026-01,800\n")
    services.record_usage(alpha, month=JAN, mtus=5000)  # after it: the latest report

    with django_capture_on_commit_callbacks(execute=True):
        job = usage_import.run_import_job(held_up.pk)

    assert (job.status, job.bad_lines) == ("refused", 1)
    assert job.errors[0].startswith(
        "Line 2: alpha's 2026-01 figure was reported again after this file was uploaded ("
    )
    assert dict(Usage.objects.values_list("workspace__slug", "mtus")) == {
        "alpha": 5000,
        "beta": 700,
    }

    # The same figure reported again since changes nothing: the file goes in.
    again = queued_job(b"workspace,month,mtus\nalpha,2026-01,5000\nbeta,2026-01,800\n")
    services.record_usage(alpha, month=JAN, mtus=5000)
    with django_capture_on_commit_callbacks(execute=True):
        job = usage_import.run_import_job(again.pk)
    assert (job.status, job.figures_replaced, job.figures_unchanged) == ("done", 1, 1)
    assert Usage.objects.get(workspace=beta).mtus == 800


def test_u1_two_files_uploaded_in_turn_go_in_whichever_a_worker_takes_first(
    db, django_capture_on_commit_callbacks
):
    """By when a figure was reported, not written: the older file imported after the newer
    one was uploaded (workers take them as they come) is no reason to refuse the newer one;
    the older file run last is refused, and the newer figures stay."""
    alpha = workspace(slug="alpha", as_of=date(2026, 1, 1))
    older = queued_job(b"workspace,month,mtus\nalpha,2026-01,4000\n")
    newer = queued_job(b"workspace,month,mtus\nalpha,2026-01,5000\n")
    with django_capture_on_commit_callbacks(execute=True):
        assert usage_import.run_import_job(older.pk).status == "done"
        assert usage_import.run_import_job(newer.pk).status == "done"
    assert Usage.objects.get(workspace=alpha).mtus == 5000

    older = queued_job(b"workspace,month,mtus\nalpha,2026-01,6000\n")
    newer = queued_job(b"workspace,month,mtus\nalpha,2026-01,7000\n")
    with django_capture_on_commit_callbacks(execute=True):
        assert usage_import.run_import_job(newer.pk).status == "done"
        assert usage_import.run_import_job(older.pk).status == "refused"
    assert Usage.objects.get(workspace=alpha).mtus == 7000


def _bad_file(lines: int) -> bytes:
    return (
        "workspace,month,mtus\n" + "".join(f"nope{n},2026-01,3\n" for n in range(lines))
    ).encode()


@pytest.mark.parametrize("on_a_worker", [True, False], ids=["worker", "while the page waits"])
def test_u2_every_bad_line_of_a_refused_file_can_be_downloaded_from_its_page(
    client,
    support,
    reviewer,
    settings,
    tmp_path,
    monkeypatch,
    on_a_worker,
    django_capture_on_commit_callbacks,
):
    """U2: "every bad line named". The import page named the first 1,000 bad lines and
    counted the rest ("… and 200 more"): support could not see lines 1,002 to 1,201 without
    the command. Now a refusal with more bad lines than the page names is kept, as a job's
    (a file imported while the page waited too), and its page offers every one as a CSV."""
    import codecs
    import csv
    import io

    settings.PRIVATE_MEDIA_ROOT = settings.MEDIA_ROOT = tmp_path
    if on_a_worker:
        monkeypatch.setattr(usage_import, "INLINE_MAX_BYTES", 10)  # every upload is "large"
    client.force_login(support)
    upload = SimpleUploadedFile("march usage.csv", _bad_file(1_200))
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("admin:billing_usage_import"), {"file": upload})
    job = UsageImportJob.objects.get()
    assert response.url == reverse("admin:billing_usage_import_job", args=[job.pk])
    assert (job.status, job.bad_lines, job.file_name) == ("refused", 1_200, "march usage.csv")

    page = client.get(response.url).content.decode()
    assert "Nothing was imported: 1,200 bad line(s)" in page
    assert "Download every bad line with its reason</a> (CSV of 1,200 lines" in page
    download = reverse("admin:billing_usage_import_bad_lines", args=[job.pk])
    assert f'href="{download}"' in page
    response = client.get(download)
    assert response["Content-Disposition"] == ('attachment; filename="march usage-bad-lines.csv"')
    # The usage import audit: served as text/csv with no charset and no BOM, its “quotes”
    # read as â€œ…â€ in Excel.
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    body = b"".join(response.streaming_content)
    assert body.startswith(codecs.BOM_UTF8)
    lines = list(csv.reader(io.StringIO(body.decode("utf-8-sig"))))
    assert lines[0] == ["line", "problem"] and len(lines) == 1 + 1_200
    assert lines[-1] == ["1201", "unknown workspace “nope1199”"]
    assert not Usage.objects.exists()

    # Only those who may import see it (R1).
    client.force_login(reviewer)
    assert client.get(download).status_code == 403


def test_u2_a_refusal_the_page_names_whole_keeps_no_file(
    client, support, settings, tmp_path, monkeypatch, django_capture_on_commit_callbacks
):
    """Up to 1,000 bad lines the page names them all: the file imported while the page waited
    is refused on the page itself, as before, and a job keeps no CSV."""
    settings.PRIVATE_MEDIA_ROOT = settings.MEDIA_ROOT = tmp_path
    client.force_login(support)
    response = client.post(
        reverse("admin:billing_usage_import"),
        {"file": SimpleUploadedFile("u.csv", _bad_file(1_000))},
    )
    assert response.status_code == 200 and not UsageImportJob.objects.exists()
    assert "Line 1001: unknown workspace “nope999”." in response.content.decode()

    monkeypatch.setattr(usage_import, "INLINE_MAX_BYTES", 10)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            reverse("admin:billing_usage_import"),
            {"file": SimpleUploadedFile("u.csv", _bad_file(1_000))},
        )
    job = UsageImportJob.objects.get()
    assert (job.bad_lines, job.bad_lines_file.name) == (1_000, "")
    assert "Download every bad line" not in client.get(response.url).content.decode()
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == []
