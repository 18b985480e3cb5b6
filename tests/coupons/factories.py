"""Builders for coupon tests: through the services, as staff would."""

from datetime import date

from django.core.files.base import ContentFile

from billing.models import Invoice
from coupons import services
from coupons.models import AcceleratorPartner
from tests.billing.factories import paid_annual as paid_annual
from tests.billing.factories import paid_monthly as paid_monthly
from tests.billing.factories import workspace

PDF = b"%PDF-1.7\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32
JPEG = b"\xff\xd8\xff\xe0" + b"\x00" * 32

_codes = iter(range(1, 10_000_000))
# A good submission of the accelerators' public application form (C7), as posted.
PARTNER_FORM = {
    "name": "Seedbed Accelerator",
    "website": "https://seedbed.example.com",
    "contact_name": "Mira Chen",
    "contact_email": "mira@seedbed.example.com",
    "description": "Twelve startups a cohort.",
    "fax": "",
}
# Oregon has no sales tax: totals below are before tax unless a test sets a rate (X3).
# paid_monthly and paid_annual (tests/billing/factories.py) are there too, on the same terms.
UNTAXED = {"business_country": "US", "business_region": "OR"}


def free_workspace(as_of=date(2026, 1, 1), **kwargs):
    return workspace(as_of=as_of, **{**UNTAXED, **kwargs})


def partner(credit_amount, *, name=None, status=AcceleratorPartner.Status.ACTIVE):
    """An accelerator partner (C7) as a review leaves it, with its own yearly credit (CR1)."""
    return AcceleratorPartner.objects.create(
        name=name or f"Accelerator {credit_amount}",
        contact_name="Ada",
        contact_email="ada@example.com",
        status=status,
        credit_amount=credit_amount,
        applied_on=date(2025, 1, 1),
    )


def coupon(**kwargs):
    values = {"code": f"PROMO{next(_codes)}", "name": "Promotion", "kind": "promotion"}
    values.update(kwargs)
    if not any(k in values for k in ("percent_off", "amount_off", "credit_amount")):
        values["percent_off"] = "10"
    return services.create_coupon(
        values.pop("code"), values.pop("name"), values.pop("kind"), **values
    )


def approved_proof(ws, support, as_of=date(2026, 1, 1), apply_discount=False):
    proof = services.submit_nonprofit_proof(
        ws, document=ContentFile(PDF, name="status.pdf"), by=support, as_of=as_of
    )
    services.approve_nonprofit_proof(proof, by=support, as_of=as_of, apply_discount=apply_discount)
    return proof


def invoices(ws):
    return list(Invoice.objects.filter(workspace=ws).order_by("issue_date", "id"))


def bills(ws):
    """(issue date, subtotal, discount, credits, total) of each invoice, in issue order."""
    return [(i.issue_date, i.subtotal, i.discount, i.credits, i.total) for i in invoices(ws)]
