"""Every write with a coupon or credit rule (SPEC C1–C8, CR1–CR3, G1–G3), one module per
concept; this module is their index, so `coupons.services.<name>` keeps working everywhere:

- `coupons.catalogue`: coupons themselves (C1, C8)
- `coupons.redemptions`: redeeming, removing, the daily expiries and follow-ups (C2, C3, C5)
- `coupons.credits`: startup-program credit grants and their lapse (CR1–CR3)
- `coupons.nonprofit_proofs`: proofs of non-profit status (C6)
- `coupons.partners`: accelerator partners (C7)
- `coupons.campaigns`: promotion campaigns (G1–G3)

Services take the date they act on (`as_of`) and never read the clock."""

from coupons.campaigns import (
    campaign_audience,
    create_campaign,
    launch_campaign,
    update_campaign,
)
from coupons.catalogue import (
    COUPON_EDITABLE,
    EDITABLE_AFTER_REDEMPTION,
    coupon_change_problems,
    create_coupon,
    discount_fixed_because,
    new_coupon_problems,
    update_coupon,
)
from coupons.credits import STARTUP_CODE, credit_amount_for, grant_credits, lapse_credit_grants
from coupons.nonprofit_proofs import (
    NONPROFIT_CODE,
    approve_nonprofit_proof,
    reject_nonprofit_proof,
    submit_nonprofit_proof,
)
from coupons.partners import (
    PARTNER_DETAILS,
    apply_as_partner,
    approve_partner,
    deactivate_partner,
    decline_partner,
    open_partner_decisions,
    partner_date_order_problem,
    partner_emails,
    update_partner,
)
from coupons.redemptions import (
    RedeemFacts,
    advance_redemptions,
    check_coupon,
    check_redeemable,
    redeem_coupon,
    redeem_facts,
    remove_discount,
    run_coupon_clock,
)

__all__ = [
    "COUPON_EDITABLE",
    "EDITABLE_AFTER_REDEMPTION",
    "NONPROFIT_CODE",
    "PARTNER_DETAILS",
    "STARTUP_CODE",
    "RedeemFacts",
    "advance_redemptions",
    "apply_as_partner",
    "approve_nonprofit_proof",
    "approve_partner",
    "campaign_audience",
    "check_coupon",
    "check_redeemable",
    "coupon_change_problems",
    "create_campaign",
    "credit_amount_for",
    "create_coupon",
    "deactivate_partner",
    "discount_fixed_because",
    "decline_partner",
    "open_partner_decisions",
    "partner_date_order_problem",
    "partner_emails",
    "grant_credits",
    "lapse_credit_grants",
    "launch_campaign",
    "update_campaign",
    "new_coupon_problems",
    "redeem_coupon",
    "redeem_facts",
    "reject_nonprofit_proof",
    "remove_discount",
    "run_coupon_clock",
    "submit_nonprofit_proof",
    "update_coupon",
    "update_partner",
]
