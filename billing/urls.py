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
    # I5: the documents a customer is sent (who may view invoices / credit notes).
    path("invoices/<int:pk>/document/", views.invoice_page, name="invoice-document"),
    path("invoices/<int:pk>/document.pdf", views.invoice_pdf, name="invoice-pdf"),
    path("credit-notes/<int:pk>/document/", views.credit_note_page, name="credit-note-document"),
    path("credit-notes/<int:pk>/document.pdf", views.credit_note_pdf, name="credit-note-pdf"),
]
