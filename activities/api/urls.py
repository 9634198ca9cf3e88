from django.urls import path

from . import (
    activities,
    assists,
    coupons,
    customer_coupons,
    events,
    experiments,
    grants,
    leaderboard,
    progress,
    teams,
)

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
        "activities/<str:code>/leaderboard/",
        leaderboard.LeaderboardView.as_view(),
        name="activity-leaderboard",
    ),
    path("activities/<str:code>/teams/<str:team>/", teams.TeamView.as_view(), name="team-detail"),
    path(
        "activities/<str:code>/assists/<str:help_request>/",
        assists.HelpRequestView.as_view(),
        name="help-request-detail",
    ),
    path(
        "customers/<str:external_id>/grants/",
        grants.CustomerGrantsView.as_view(),
        name="customer-grants",
    ),
    path(
        "customers/<str:external_id>/activities/<str:code>/",
        progress.CustomerProgressView.as_view(),
        name="customer-progress",
    ),
    path(
        "customers/<str:external_id>/coupons/",
        customer_coupons.CustomerCouponsView.as_view(),
        name="customer-coupons",
    ),
    path("coupons/<str:code>/redeem/", coupons.RedeemCouponView.as_view(), name="coupon-redeem"),
    path("coupons/<str:code>/release/", coupons.ReleaseCouponView.as_view(), name="coupon-release"),
]
