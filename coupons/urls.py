from django.urls import path

from coupons import views

app_name = "coupons"
urlpatterns = [
    path("apply/", views.apply, name="partner_apply"),
    path("apply/thanks/", views.thanks, name="partner_thanks"),
]
