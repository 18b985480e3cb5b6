from django.urls import path

from coupons import views

app_name = "credits"
urlpatterns = [path("", views.credit_liability, name="liability")]
