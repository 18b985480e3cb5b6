"""Admin pages whose form calls a service: the shape every action page of the back office has."""

from django.contrib import messages
from django.shortcuts import redirect
from django.template.response import TemplateResponse

from billing.errors import BillingError


def service_form_page(model_admin, request, obj, *, form, perform, template, title, **context):
    """Show `form`; on a valid POST call `perform(cleaned_data) -> message`. A refusal (any
    BillingError) comes back as an error message on the same page; success is written to the
    object's admin log and returns to its change page. `form=None` is a bare confirmation."""
    if request.method == "POST" and (form is None or form.is_valid()):
        try:
            message = perform(form.cleaned_data if form is not None else {})
        except BillingError as exc:
            model_admin.message_user(request, str(exc), messages.ERROR)
        else:
            model_admin.log_change(request, obj, message)
            model_admin.message_user(request, message, messages.SUCCESS)
            opts = obj._meta
            return redirect(f"admin:{opts.app_label}_{opts.model_name}_change", obj.pk)
    return TemplateResponse(
        request,
        template,
        {
            **model_admin.admin_site.each_context(request),
            "title": title,
            "form": form,
            "opts": model_admin.model._meta,
            **context,
        },
    )
