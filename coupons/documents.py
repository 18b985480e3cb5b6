"""Uploaded documents are judged by their content, never by their name or the browser's
declared type (C6; the same rule as X5): PDF, PNG or JPEG, not empty, at most 10 MB."""

from coupons.errors import DocumentRejected

MAX_DOCUMENT_BYTES = 10 * 1024 * 1024

# Leading bytes of each accepted format and the content type it is served with.
SIGNATURES = [
    (b"%PDF-", "application/pdf"),
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
]


def document_type(upload) -> str:
    """The content type of `upload` (a Django `File`) by its first bytes; `DocumentRejected`
    with a reason fit to show when it is empty, too large or not PDF, PNG or JPEG."""
    if upload is None:
        raise DocumentRejected("Choose a document to upload (PDF, PNG or JPEG).")
    size = upload.size
    if not size:
        raise DocumentRejected("The document is empty: upload the PDF, PNG or JPEG again.")
    if size > MAX_DOCUMENT_BYTES:
        raise DocumentRejected(
            f"The document is {size / 1024 / 1024:.1f} MB: at most 10 MB is accepted."
        )
    upload.seek(0)
    head = upload.read(16)
    upload.seek(0)
    for signature, content_type in SIGNATURES:
        if head.startswith(signature):
            return content_type
    raise DocumentRejected(
        "The document is not a PDF, PNG or JPEG (judged by its content, not its name)."
    )
