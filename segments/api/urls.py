from django.urls import path

from . import customers, orders

app_name = "segments-api"

urlpatterns = [
    # Before customers/<external_id>/ so that "bulk" is never taken for an id.
    path("customers/bulk/", customers.CustomerBulkView.as_view(), name="customer-bulk"),
    path(
        "customers/<str:external_id>/",
        customers.CustomerUpsertView.as_view(),
        name="customer-detail",
    ),
    path("orders/<str:external_id>/", orders.OrderUpsertView.as_view(), name="order-detail"),
    path(
        "orders/<str:external_id>/<str:transition>/",
        orders.OrderTransitionView.as_view(),
        name="order-transition",
    ),
]
