"""Promotion campaigns (G1–G3): support builds a campaign and sees its reach before launch;
launching hands the emails to the workers; the page shows progress and results."""

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.db.models import Count, OuterRef, Subquery
from django.db.models.functions import Coalesce
from django.shortcuts import get_object_or_404, redirect
from django.urls import reverse
from django.utils import timezone

from billing import admin_toolkit as toolkit
from billing.admin_toolkit import ServiceAdmin, service_form_page, shown_column
from billing.errors import BillingError
from billing.formatting import count
from coupons import campaigns
from coupons.forms import CampaignForm
from coupons.models import Campaign, CampaignRecipient, Redemption


def _count(model):
    """How many rows of `model` point at the campaign."""
    rows = model.objects.filter(campaign=OuterRef("pk")).order_by().values("campaign")
    return Coalesce(Subquery(rows.annotate(n=Count("pk")).values("n")), 0)


@admin.register(Campaign)
class CampaignAdmin(ServiceAdmin):
    """G1: support builds a campaign and sees its reach, a sample and the refusals by reason
    before launch; G2: launching hands the emails to the workers, the page shows progress; G3:
    notified, redeemed and the discount given so far."""

    form = CampaignForm
    reason_on_change = True
    list_display = ["name", "coupon", "status", "launched_on", "reached", "redeemed"]
    list_select_related = ["coupon"]
    list_filter = ["status", "coupon"]
    search_fields = ["name", "coupon__code", "subject"]
    change_form_template = "admin/coupons/campaign/change_form.html"
    add_fieldsets = [
        (None, {"fields": ["name", "coupon"]}),
        ("The email", {"fields": ["subject", "message"]}),
        (
            "Audience (workspaces matching every filter given)",
            {"fields": CampaignForm.AUDIENCE_FIELDS},
        ),
    ]
    view_fields = [
        "name",
        "coupon",
        "subject",
        "message",
        "audience_text",
        "status",
        "created_by",
        "launched_on",
        "launched_by",
        "launches",
    ]
    pages = (("<int:pk>/launch/", "launch_view", "coupons_campaign_launch"),)

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            # Each count by a subquery of its own: two joins in one query made the database
            # build recipients × redemptions rows before counting (seconds at 100,000).
            .annotate(reached_count=_count(CampaignRecipient), redeemed_count=_count(Redemption))
        )

    def has_change_permission(self, request, obj=None):
        # G2: a launched campaign's emails went out as they were: its page is read-only for
        # everyone, and a POST to it is refused (`update_campaign` refuses it as well).
        if obj is not None and obj.status != Campaign.Status.DRAFT:
            return False
        return super().has_change_permission(request, obj)

    def get_fieldsets(self, request, obj=None):
        if obj is None:
            return self.add_fieldsets
        if not self.has_change_permission(request, obj):
            return [(None, {"fields": self.view_fields})]
        return [
            *self.add_fieldsets,
            ("Status", {"fields": ["status", "created_by"]}),
            ("Why", {"fields": ["change_reason"]}),
        ]

    def get_readonly_fields(self, request, obj=None):
        if obj is None:
            return []
        if not self.has_change_permission(request, obj):
            return self.view_fields
        return ["status", "created_by"]

    def response_post_save_add(self, request, obj):
        """G1 (walk 9): a new campaign opens on its own page, where its reach and the launch
        are, not on the list."""
        return redirect(reverse("admin:coupons_campaign_change", args=[obj.pk]))

    def update(self, request, campaign, data, changed):
        """G1: a draft's details through `update_campaign`, with the reason asked for."""
        changes = {name: data[name] for name in ("name", "subject", "message") if name in changed}
        if "coupon" in changed:
            changes["coupon_code"] = data["coupon"]
        if set(changed) & set(CampaignForm.AUDIENCE_FIELDS):
            changes["audience"] = CampaignForm.audience_from(data)
        campaigns.update_campaign(
            campaign,
            by=request.user,
            reason=data["change_reason"],
            as_of=toolkit.today(),
            **changes,
        )

    def create(self, request, data):
        return campaigns.create_campaign(
            data["name"],
            data["coupon"].code,
            data["subject"],
            data["message"],
            audience=CampaignForm.audience_from(data),
            by=request.user,
            as_of=toolkit.today(),
        )

    reached = shown_column("reached_count", count, description="Reached")
    redeemed = shown_column("redeemed_count", count, description="Redeemed")

    @admin.display(description="Audience")
    def audience_text(self, obj):
        return campaigns.describe_audience(obj.audience)

    def change_view(self, request, object_id, form_url="", extra_context=None):
        campaign = self.get_object(request, object_id)
        if campaign is not None:
            today = toolkit.today()
            # D2, D4: where a coupon would be refused because of the clock, so is the preview.
            preview, refused = None, ""
            try:
                preview = campaigns.cached_audience_preview(
                    campaign,
                    as_of=today,
                    now=timezone.now(),
                    refresh=request.GET.get("refresh") == "preview",
                )
            except BillingError as exc:
                refused = str(exc)
            extra_context = {
                **(extra_context or {}),
                "preview": preview,
                "preview_refused": refused,
                "preview_minutes": campaigns.PREVIEW_TIMEOUT // 60,
                "progress": campaigns.campaign_progress(campaign),
                "results": campaigns.campaign_results(campaign),
                "can_launch": request.user.has_perm("coupons.launch_campaign"),
                "launch_url": reverse("admin:coupons_campaign_launch", args=[campaign.pk]),
            }
        return super().change_view(request, object_id, form_url, extra_context)

    def launch_view(self, request, pk):
        """G2: a confirmation with the reach; launching again reaches only newcomers and hands
        on unsent batches. A launch that would email nobody is not offered: the page says why."""
        if not request.user.has_perm("coupons.launch_campaign"):
            raise PermissionDenied
        campaign = get_object_or_404(Campaign.objects.select_related("coupon"), pk=pk)
        today = toolkit.today()
        # D2, D4: the launch would be refused as the preview is: say why, offer no button.
        preview, refused = None, ""
        try:
            preview = campaigns.audience_preview(campaign, as_of=today)
        except BillingError as exc:
            refused = str(exc)
        progress = campaigns.campaign_progress(campaign)
        if preview is not None:
            refused = campaigns.nothing_to_launch(campaign, preview=preview, progress=progress)

        def perform(data):
            added = campaigns.launch_campaign(campaign, by=request.user, as_of=today)
            return (
                f"{campaign.name} launched: {added} workspace(s) added; the workers email them "
                "in batches."
            )

        return service_form_page(
            self,
            request,
            campaign,
            form=None,
            perform=perform,
            template="admin/coupons/campaign/launch.html",
            title=f"Launch campaign: {campaign.name}",
            closed=refused,
            # G2: the campaign as the page showed it (its coupon, audience and email, and how
            # often it was launched): one edited or launched since is shown again, not
            # launched. Not the reach, which moves with every sign-up.
            shown=(
                f"{campaign.status} {campaign.launches} {campaign.coupon_id} "
                f"{sorted(campaign.audience.items())} {campaign.subject} {campaign.message}"
            ),
            submit_label="Launch campaign" if campaign.launches == 0 else "Launch again",
            campaign=campaign,
            preview=preview,
            progress=progress,
        )
