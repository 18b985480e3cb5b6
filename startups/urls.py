from django.urls import path

from startups import views

app_name = "startups"
urlpatterns = [
    path("apply/", views.apply, name="apply"),
    path("apply/thanks/", views.thanks, name="thanks"),
    path("queue/", views.queue, name="queue"),
]
