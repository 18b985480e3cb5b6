from django.urls import path

from billing import views

app_name = "finance"

urlpatterns = [
    path("", views.invoice_list, name="invoices"),
    path("invoices.csv", views.invoice_export, name="invoices-export"),
    path("tax-report/", views.tax_report, name="tax-report"),
    path("revenue/", views.revenue, name="revenue"),
    path(
        "certificates/<int:pk>/document/",
        views.certificate_document,
        name="certificate-document",
    ),
]
