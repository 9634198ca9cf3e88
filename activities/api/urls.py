from django.urls import path

from . import activities, events, experiments, grants

app_name = "api"

urlpatterns = [
    path("events/", events.EventListCreateView.as_view(), name="event-list"),
    path("events/<uuid:event_id>/", events.EventDetailView.as_view(), name="event-detail"),
    path("activities/", activities.ActivityListView.as_view(), name="activity-list"),
    path(
        "activities/<str:code>/participation/<str:external_id>/",
        activities.ParticipationView.as_view(),
        name="participation-detail",
    ),
    path(
        "activities/<str:code>/experiment/",
        experiments.ActivityExperimentView.as_view(),
        name="activity-experiment",
    ),
    path(
        "customers/<str:external_id>/grants/",
        grants.CustomerGrantsView.as_view(),
        name="customer-grants",
    ),
]
