from django.urls import path

from coupons import views

app_name = "coupons"
urlpatterns = [
    path("apply/", views.apply, name="partner_apply"),
    path("apply/thanks/", views.thanks, name="partner_thanks"),
    # C6: staff only (coupons.view_nonprofitproof), linked from the proofs' admin pages.
    path("proofs/<int:pk>/document/", views.proof_document, name="proof-document"),
]
