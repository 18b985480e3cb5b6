"""Private documents (SPEC X5, C6), shared by every app that takes an uploaded document:
exemption certificates here, non-profit proofs in `coupons`.

- the content check: PDF, PNG or JPEG by the file's first bytes (the name and the browser's
  declared type are the uploader's word and are not trusted), not empty, at most 10 MB;
- storage under a random name in the private storage (`settings.PRIVATE_MEDIA_ROOT`, which no
  URL serves), with the file removed again when the transaction that stored it rolls back, and
  a daily sweep of the files no row names (`delete_orphan_documents`) for the rollbacks and
  crashes no code of ours sees;
- the download: a response for a permission-checked view that a browser will not sniff or run
  as a page.
"""

import secrets
from contextlib import contextmanager
from datetime import datetime, timedelta

from django import forms
from django.apps import apps
from django.core.files.storage import default_storage
from django.db import models, transaction
from django.http import FileResponse, Http404
from django.utils.deconstruct import deconstructible

from billing.errors import InvalidDocument

__all__ = [
    "EXTENSIONS",
    "MAX_DOCUMENT_BYTES",
    "SIGNATURES",
    "InvalidDocument",
    "PrivateUploadTo",
    "clean_document",
    "delete_orphan_documents",
    "document_response",
    "document_type",
    "preview",
    "stored_until_rollback",
]

MAX_DOCUMENT_BYTES = 10 * 1024 * 1024
# The first bytes of each accepted format and the content type it is stored and served with.
SIGNATURES = [
    (b"%PDF-", "application/pdf"),
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
]
EXTENSIONS = {"application/pdf": ".pdf", "image/png": ".png", "image/jpeg": ".jpg"}


# --- The content check ------------------------------------------------------------------------


def document_type(upload, *, what: str = "document") -> str:
    """The content type of `upload` (a Django `File`) judged by its first bytes, or
    `InvalidDocument` with a message for the person uploading it, naming `what` was expected
    (e.g. "certificate", "proof")."""
    if upload is None:
        raise InvalidDocument(f"Attach the {what}: a PDF, PNG or JPEG file of at most 10 MB.")
    size = upload.size
    if not size:
        raise InvalidDocument(f"The {what} file is empty: attach a PDF, PNG or JPEG file.")
    if size > MAX_DOCUMENT_BYTES:
        raise InvalidDocument(
            f"The {what} file is {size:,} bytes: at most 10 MB is accepted "
            f"({MAX_DOCUMENT_BYTES:,} bytes)."
        )
    upload.seek(0)
    head = upload.read(16)
    upload.seek(0)
    for signature, content_type in SIGNATURES:
        if head.startswith(signature):
            return content_type
    raise InvalidDocument(
        f"The {what} must be a PDF, PNG or JPEG file, judged by its content: this file is none "
        "of those, whatever its name says."
    )


class DocumentField(forms.FileField):
    """A form's document upload. Its name is not kept (`PrivateUploadTo` stores the file under
    a random one), so the length of the column that holds the stored name does not bound it."""

    def __init__(self, *, max_length=None, **kwargs):
        super().__init__(**kwargs)


def clean_document(upload, *, what: str = "document"):
    """The content check for a form's `clean_<field>`: the upload, or a `ValidationError` with
    the same message the service would give."""
    try:
        document_type(upload, what=what)
    except InvalidDocument as exc:
        raise forms.ValidationError(str(exc)) from None
    return upload


# --- Storage --------------------------------------------------------------------------------------


@deconstructible(path="billing.documents.PrivateUploadTo")
class PrivateUploadTo:
    """A FileField's `upload_to`: a random name under `folder` in the private storage, with the
    extension of the content type on the instance (`content_type`, set from `document_type`).
    Nothing of the uploader's file name reaches the disk."""

    def __init__(self, folder: str):
        self.folder = folder.strip("/")

    def __call__(self, instance, filename: str) -> str:
        extension = EXTENSIONS.get(getattr(instance, "content_type", ""), "")
        return f"{self.folder}/{secrets.token_hex(16)}{extension}"

    def __eq__(self, other):
        return isinstance(other, PrivateUploadTo) and other.folder == self.folder

    def __hash__(self):
        return hash(self.folder)


@contextmanager
def stored_until_rollback(field_file, upload, *, using=None):
    """Store `upload` in `field_file` (a FileField of an unsaved instance; the name comes from
    its `upload_to`) and run the block in a transaction (a savepoint inside another). If that
    transaction rolls back — an exception in the block, or a commit that fails — the stored file
    is deleted again, so no document is left in storage without its row.

    Django has no rollback hook: a rollback of an enclosing transaction after the block has
    completed is not seen here, nor a store that fails part-way (a full disk) before the file
    has its name, nor a process that dies before its commit. `delete_orphan_documents` deletes
    those files a day later."""
    field_file.save("document", upload, save=False)
    try:
        with transaction.atomic(using=using):
            yield field_file
    except BaseException:
        field_file.delete(save=False)
        raise


# Longer than any transaction that stores a document runs before its commit (a page's or a
# task's), so the sweep never takes the file of a row about to be committed.
ORPHAN_AFTER = timedelta(days=1)


def delete_orphan_documents(*, now: datetime) -> list[str]:
    """The private files that no row names, stored before `now - ORPHAN_AFTER`, deleted; their
    names returned. A row's file is kept while the row or any of its history rows names it
    (R4's history shows the document a decision was made on)."""
    kept, folders = set(), set()
    for model in apps.get_models():
        for field in model._meta.fields:
            if isinstance(field, models.FileField) and isinstance(field.upload_to, PrivateUploadTo):
                folders.add(field.upload_to.folder)
                for named in (model, getattr(getattr(model, "history", None), "model", None)):
                    if named is not None:
                        kept.update(named._default_manager.values_list(field.name, flat=True))
    deleted = []
    for folder in sorted(folders):
        if not default_storage.exists(folder):
            continue
        for file_name in sorted(default_storage.listdir(folder)[1]):
            name = f"{folder}/{file_name}"
            if name in kept or default_storage.get_modified_time(name) > now - ORPHAN_AFTER:
                continue
            default_storage.delete(name)
            deleted.append(name)
    return deleted


# --- The download ---------------------------------------------------------------------------------

# Types a browser may show in the page (an <iframe> or <img>) when asked for a preview.
INLINE_TYPES = frozenset(EXTENSIONS)


def preview(url: str, content_type: str) -> dict | None:
    """What a review page needs to show a stored document in place (the template
    `admin/toolkit/document_preview.html`): a PDF in a frame, an image as an image; None for
    anything else. `url` is the permission-checked view; `?preview=1` asks it for inline."""
    if content_type not in INLINE_TYPES:
        return None
    kind = "pdf" if content_type == "application/pdf" else "image"
    return {"src": f"{url}?preview=1", "download": url, "kind": kind}


def document_response(
    file_field, *, content_type: str, filename: str, inline: bool = False
) -> FileResponse:
    """The stored document for a view that has checked the permission already.

    A download (`Content-Disposition: attachment`) by default; `inline=True` lets a page of
    this site show a PDF, PNG or JPEG in an <iframe> or <img> (anything else is still a
    download). Either way the browser must not sniff the type, the document runs in a CSP
    sandbox with nothing allowed, and no cache keeps it. Http404 when the file is missing."""
    if not file_field:
        raise Http404("The document is missing from storage.")
    try:
        handle = file_field.open("rb")
    except FileNotFoundError:
        raise Http404("The document is missing from storage.") from None
    inline = inline and content_type in INLINE_TYPES
    response = FileResponse(
        handle,
        as_attachment=not inline,
        filename=filename,
        content_type=content_type or "application/octet-stream",
    )
    response["X-Content-Type-Options"] = "nosniff"
    response["Cache-Control"] = "private, no-store"
    if inline:
        # Shown in a page of this site only: not framed by another site.
        response["Content-Security-Policy"] = "default-src 'none'; sandbox; frame-ancestors 'self'"
        response["X-Frame-Options"] = "SAMEORIGIN"
    else:
        response["Content-Security-Policy"] = "default-src 'none'; sandbox"
    return response
