"""Every write with a billing rule, importable from one place (DESIGN "Contracts").

Each concept lives in its own module; this one only gathers their services:
- `billing.subscriptions`: workspaces, payment methods, plan and interval changes, trials;
- `billing.usage` and `billing.usage_import`: usage figures, one at a time or by the file;
- `billing.locks`: strikes, lock rules, support's unlock;
- `billing.month_close`: the close of a month in chunks, set-aside workspaces;
- `billing.forecast`: an invoice's preview and the forecast, run in a sandbox;
- `billing.daily_run`: the billing clock's run, day by day;
- `billing.credit_notes`: voids and credit notes;
- `billing.closures`, `billing.exemptions`, `billing.plans`, `billing.tax`: closing a
  workspace, tax-exemption certificates, the plan catalogue, tax rates.
"""

from billing.closures import close_workspace, reopen_workspace
from billing.credit_notes import (
    decide_credit_note,
    refundable_amount,
    request_credit_note,
    tax_given_back,
    void_effects,
    void_invoice,
    void_refusal,
)
from billing.daily_run import day_left_after_its_close, day_to_go_on_with, run_billing
from billing.exemptions import (
    approve_exemption,
    reject_exemption,
    start_exemption_review,
    submit_exemption,
)
from billing.forecast import preview_invoice
from billing.month_close import (
    bill_chunk,
    close_month,
    finish_close_if_complete,
    retry_set_aside,
)
from billing.plans import (
    DATED_TERMS,
    PLAN_TERMS,
    update_plan,
    withdraw_plan_terms,
    withdrawal_refusal,
)
from billing.subscriptions import (
    add_payment_method,
    change_interval,
    change_to_free,
    change_to_team,
    create_workspace,
    remove_payment_method,
    send_trial_reminders,
    unlock_workspace,
    update_workspace,
)
from billing.tax import set_tax_rate, withdraw_tax_rate, withdrawal_of_rate_refusal
from billing.usage import record_usage
from billing.usage_import import MAX_MTUS, import_usage

__all__ = [
    "MAX_MTUS",
    "DATED_TERMS",
    "PLAN_TERMS",
    "add_payment_method",
    "approve_exemption",
    "bill_chunk",
    "change_interval",
    "change_to_free",
    "change_to_team",
    "close_month",
    "close_workspace",
    "create_workspace",
    "day_left_after_its_close",
    "day_to_go_on_with",
    "decide_credit_note",
    "finish_close_if_complete",
    "import_usage",
    "preview_invoice",
    "record_usage",
    "refundable_amount",
    "reject_exemption",
    "remove_payment_method",
    "reopen_workspace",
    "request_credit_note",
    "retry_set_aside",
    "run_billing",
    "send_trial_reminders",
    "set_tax_rate",
    "start_exemption_review",
    "submit_exemption",
    "tax_given_back",
    "unlock_workspace",
    "update_plan",
    "update_workspace",
    "void_effects",
    "void_invoice",
    "void_refusal",
    "withdraw_plan_terms",
    "withdraw_tax_rate",
    "withdrawal_of_rate_refusal",
    "withdrawal_refusal",
]
