from django.urls import path

from privacy import api

urlpatterns = [
    path("customers/", api.CustomerListView.as_view(), name="customer-list"),
    path("customers/<int:customer_id>/", api.CustomerDetailView.as_view(), name="customer-detail"),
    path(
        "customers/<int:customer_id>/notes/",
        api.CustomerNotesView.as_view(),
        name="customer-notes",
    ),
    path(
        "customers/<int:customer_id>/notes/more/",
        api.CustomerMoreNotesView.as_view(),
        name="customer-more-notes",
    ),
    path(
        "customers/<int:customer_id>/export/",
        api.CustomerExportView.as_view(),
        name="customer-export",
    ),
]
