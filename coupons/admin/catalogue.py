"""The coupon catalogue (C1, C2) in the support console: coupons are created and edited through
the services, and a redeemed coupon's discount cannot change."""

from django.contrib import admin
from django.db.models import Count, Q

from billing import admin_toolkit as toolkit
from billing.admin_toolkit import ServiceAdmin, with_note
from billing.formatting import count, day
from coupons import selectors, services
from coupons.forms import CouponForm
from coupons.models import Coupon


class PartnerFilter(admin.RelatedFieldListFilter):
    """C7: coupons by accelerator partner; the last choice, coupons of none, says so (Django
    writes "-")."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.empty_value_display = "No partner"


@admin.register(Coupon)
class CouponAdmin(ServiceAdmin):
    form = CouponForm
    reason_on_change = True
    list_display = [
        "code",
        "name",
        "kind",
        "value_and_duration",
        "intervals_text",
        "used_and_left",
        "status_and_deadline",
        "partner",
    ]
    list_filter = ["kind", "duration", "active", ("partner", PartnerFilter)]
    list_select_related = ["partner"]
    search_fields = ["code", "name"]
    fieldsets = [
        (None, {"fields": ["code", "name", "kind", "active", "partner"]}),
        (
            "Discount or credit (exactly one)",
            {"fields": ["percent_off", "amount_off", "credit_amount"]},
        ),
        ("Duration", {"fields": ["duration", "duration_months", "follow_up"]}),
        ("Applies to", {"fields": ["applies_monthly", "applies_annual"]}),
        ("Limits", {"fields": ["redeem_by", "max_redemptions", "times_redeemed"]}),
    ]

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .annotate(
                redeemed_count=Count("redemptions"),
                follow_up_count=Count("redemptions", filter=Q(redemptions__is_follow_up=True)),
            )
        )

    def get_readonly_fields(self, request, obj=None):
        if obj is None:
            return ["times_redeemed"]
        if services.discount_fixed_because(obj):
            # A redeemed coupon's discount (or its lead's follow-up's) is what workspaces were
            # given: it cannot change.
            editable = services.EDITABLE_AFTER_REDEMPTION
            return [
                f
                for f in [*CouponForm.Meta.fields, "times_redeemed"]
                if f not in editable or f == "code"
            ]
        return ["code", "times_redeemed"]

    def update(self, request, coupon, data, changed):
        services.update_coupon(
            coupon,
            by=request.user,
            reason=data["change_reason"],
            as_of=toolkit.today(),
            **{name: data[name] for name in changed if name in CouponForm.Meta.fields},
        )

    def create(self, request, data):
        return services.create_coupon(**CouponForm.new_coupon(data), by=request.user)

    @admin.display(description="Intervals")
    def intervals_text(self, obj):
        return ", ".join(obj.intervals)

    @admin.display(description="Used", ordering="redeemed_count")
    def redeemed(self, obj):
        """C5: follow-ups are applied whatever the maximum (which counts the others), so they
        are said apart: "2 (1 as a follow-up)" beside a maximum of 1 reads right."""
        used = count(obj.redeemed_count)
        if obj.follow_up_count:
            return f"{used} ({count(obj.follow_up_count)} as a follow-up)"
        return used

    @admin.display(description="Remaining")
    def remaining(self, obj):
        if obj.max_redemptions is None:
            return "no limit"
        return max(obj.max_redemptions - obj.times_redeemed, 0)

    @admin.display(description="Status")
    def status(self, obj):
        return selectors.coupon_status(obj, as_of=toolkit.today())

    # Two facts a column, so the list fits 1,366 px beside the menu and the filters.
    @admin.display(description="Value")
    def value_and_duration(self, obj):
        return with_note(obj.value_display, obj.duration_display)

    @admin.display(description="Used", ordering="redeemed_count")
    def used_and_left(self, obj):
        left = self.remaining(obj)
        return with_note(self.redeemed(obj), left if left == "no limit" else f"{left} left")

    @admin.display(description="Status", ordering="redeem_by")
    def status_and_deadline(self, obj):
        status = self.status(obj)
        return with_note(status, f"redeem by {day(obj.redeem_by)}") if obj.redeem_by else status
