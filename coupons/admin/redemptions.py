"""Redemptions (C2, C5): support applies a coupon to a workspace or removes its running
discount, with a reason; the discounts given on each invoice are listed read-only."""

from django import forms
from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.shortcuts import get_object_or_404
from django.urls import reverse

from billing import admin_toolkit as toolkit
from billing.admin_toolkit import (
    ReadOnlyInline,
    ReasonForm,
    ServiceAdmin,
    money_column,
    row_id,
    service_form_page,
    shown_column,
    unsorted_column,
    with_note,
)
from billing.formatting import day, month
from billing.models import Workspace
from coupons import selectors, services
from coupons.forms import ApplyCouponForm
from coupons.models import Coupon, DiscountApplication, NonprofitProof, Redemption


class RedemptionForm(forms.ModelForm):
    """The redemption page is read-only: help texts in the readers' words."""

    class Meta:
        model = Redemption
        fields = []
        help_texts = {
            "override_reason": "Why the reviewer approved the startup program although the "
            "workspace had received a coupon or credit before.",
            "runs_out_on": "A repeating coupon: the 1st of the month after the last month it "
            "covers (the invoice issued that day bills the month before, discounted). A once "
            "coupon: the day of the invoice it went to. Empty: not known yet.",
        }


@admin.register(Redemption)
class RedemptionAdmin(ServiceAdmin):
    workspace_of_row = "workspace"
    workspace_of_post = "workspace"  # the apply page's
    form = RedemptionForm
    list_display = [
        "workspace",
        "coupon_code",
        "redeemed",
        "status_and_end",
        "runs_out_on",
        "is_follow_up",
    ]
    list_filter = ["status", "is_follow_up", "coupon__kind", "coupon"]
    list_select_related = ["workspace", "coupon", "by"]
    search_fields = ["workspace__slug", "workspace__name", "coupon__code"]
    date_hierarchy = "redeemed_on"
    change_list_template = "admin/coupons/redemption/change_list.html"
    fields = [
        "workspace",
        "coupon",
        "redeemed_on",
        "first_month",
        "runs_out_on",
        "status",
        "ended_on",
        "by",
        "reason",
        "is_follow_up",
        "follows",
        "override_reason",
        "partner",
        "campaign",  # G3
    ]
    pages = (
        ("apply/", "apply_view", "coupons_redemption_apply"),
        ("<int:pk>/remove/", "remove_view", "coupons_redemption_remove"),
    )

    # Not sortable: sorted by coupon, the list joined every redemption to its coupon and
    # sorted them all, a few coupons holding most of them (15,000: 0.15–0.20 s a page); the
    # Coupon filter narrows the list instead.
    @admin.display(description="Coupon")
    def coupon_code(self, obj):
        return obj.coupon.code

    # Two facts a column, so the list fits 1,366 px beside the menu and the filters.
    @admin.display(description="Redeemed", ordering="redeemed_on")
    def redeemed(self, obj):
        return with_note(day(obj.redeemed_on), f"by {obj.by}") if obj.by else day(obj.redeemed_on)

    @admin.display(description="Status", ordering="status")
    def status_and_end(self, obj):
        status = obj.get_status_display()
        return with_note(status, day(obj.ended_on)) if obj.ended_on else status

    first_month = shown_column(
        "started_month", month, description="First billing month", sortable=False
    )

    def changelist_view(self, request, extra_context=None):
        extra_context = {
            **(extra_context or {}),
            "can_apply": request.user.has_perm("coupons.add_redemption"),
        }
        return super().changelist_view(request, extra_context)

    def apply_view(self, request):
        """C2: support applies a coupon; the service's refusal is shown as it is."""
        if not request.user.has_perm("coupons.add_redemption"):
            raise PermissionDenied
        # The workspace page links here with its id; anything else in the address is ignored.
        initial = {"workspace": row_id(request.GET.get("workspace"))}
        form = ApplyCouponForm(
            request.POST or None,
            initial=initial,
            today=toolkit.today(),
            admin_site=self.admin_site,
        )

        def perform(data):
            workspace = data["workspace"]
            redemption = services.redeem_coupon(
                workspace,
                data["coupon"].code,
                by=request.user,
                as_of=toolkit.today(),
                reason=data["reason"],
            )
            coupon = redemption.coupon
            value = f"{coupon.value_display}, {coupon.duration_display.lower()}"
            since = day(redemption.redeemed_on)
            return f"{coupon.code} ({value}) applied to {workspace.name} from {since}.", redemption

        back = row_id(request.POST.get("workspace") or request.GET.get("workspace"))
        picked = Workspace.objects.filter(pk=back).first() if back else None
        back_url = (
            reverse("admin:billing_workspace_change", args=[back])
            if back
            else reverse("admin:coupons_redemption_changelist")
        )
        way_on_label, way_on_url = self._way_on(request, picked, form)
        return service_form_page(
            self,
            request,
            None,
            way_on_url=way_on_url,
            way_on_label=way_on_label,
            title="Apply a coupon",
            form=form,
            back_url=back_url,
            perform=perform,
            intro=selectors.coupon_standing(picked, as_of=toolkit.today()) if picked else "",
        )

    @staticmethod
    def _way_on(request, workspace, form) -> tuple[str, str] | tuple[None, None]:
        """Where the apply page leads when the coupon cannot go on yet: removing the discount
        running (C2: one at a time), or to the non-profit proof a NONPROFIT coupon needs (C6:
        the one waiting for review, or a new one); the service still decides."""
        if workspace is None:
            return None, None
        running = selectors.active_discount(workspace, as_of=toolkit.today())
        if running is not None:
            if not request.user.has_perm("coupons.remove_discount"):
                return None, None
            url = reverse("admin:coupons_redemption_remove", args=[running.pk])
            return f"Remove {running.coupon.code} first", url
        coupon = form.cleaned_data.get("coupon") if form.is_bound and form.is_valid() else None
        if coupon is None or coupon.kind != Coupon.Kind.NONPROFIT:
            return None, None
        proofs = NonprofitProof.objects.filter(workspace=workspace)
        if proofs.filter(status=NonprofitProof.Status.APPROVED).exists():
            return None, None
        waiting = proofs.filter(status=NonprofitProof.Status.SUBMITTED).first()
        if waiting is not None and request.user.has_perm("coupons.view_nonprofitproof"):
            url = reverse("admin:coupons_nonprofitproof_change", args=[waiting.pk])
            return f"Review its non-profit proof of {day(waiting.submitted_on)}", url
        if waiting is None and request.user.has_perm("coupons.add_nonprofitproof"):
            url = reverse("admin:coupons_nonprofitproof_add") + f"?workspace={workspace.pk}"
            return "Upload a non-profit proof", url
        return None, None

    def remove_view(self, request, pk):
        """C5: support removes a workspace's running discount, with a reason."""
        if not request.user.has_perm("coupons.remove_discount"):
            raise PermissionDenied
        redemption = get_object_or_404(
            Redemption.objects.select_related("workspace", "coupon"), pk=pk
        )
        workspace = redemption.workspace
        closed = ""
        running = selectors.active_discount(workspace, as_of=toolkit.today())
        if running is None or running.pk != redemption.pk:  # removed, ran out, or not a discount
            status = redemption.get_status_display().lower()
            ended = f" on {day(redemption.ended_on)}" if redemption.ended_on else ""
            closed = (
                f"{redemption.coupon.code} is not {workspace.name}'s running discount ({status}"
                f"{ended}): there is nothing to remove."
            )

        def perform(data):
            removed = services.remove_discount(
                workspace,
                by=request.user,
                reason=data["reason"],
                as_of=toolkit.today(),
                redemption=redemption,
            )
            return f"{removed.coupon.code} removed from {workspace.name}.", removed

        return service_form_page(
            self,
            request,
            redemption,
            title=f"Remove the discount of {workspace.name}",
            form=ReasonForm(request.POST or None),
            back_url=reverse("admin:billing_workspace_change", args=[workspace.pk]),
            perform=perform,
            closed=closed,
            intro=selectors.redemption_summary(redemption),
        )


class RedemptionInline(ReadOnlyInline):
    """The workspace page's coupons received."""

    model = Redemption
    fk_name = "workspace"
    fields = ["coupon", "redeemed_on", "status", "runs_out_on", "ended_on", "by", "is_follow_up"]
    show_change_link = True
    verbose_name_plural = "coupons received"


@admin.register(DiscountApplication)
class DiscountApplicationAdmin(ServiceAdmin):
    list_display = ["invoice", "redemption", "amount_display", "created"]
    list_select_related = ["invoice", "redemption__coupon", "redemption__workspace"]
    search_fields = ["invoice__number", "redemption__coupon__code", "redemption__workspace__slug"]
    # The page shows the list's columns: the discount as money ("$20.00", not "20.00").
    fields = readonly_fields = list_display

    # Not sortable, Discount and Created at: sorted by one, the list sorted every application
    # for one page (120,000: 0.19–0.22 s; bench_sorts), and an index for each would slow every
    # month close, which writes them. The list is newest first already (by id); a coupon's or
    # an invoice's discounts are found by the search.
    amount_display = money_column("amount", description="Discount", sortable=False)
    created = unsorted_column("created_at", description="Created at")
