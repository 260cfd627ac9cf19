"""Catalog pages, included under /app/: the admin editor at admin/catalog/ and the agents' search panel."""

from __future__ import annotations

from django.urls import path

from catalog import views

urlpatterns = [
    path("admin/catalog/", views.product_list, name="catalog-admin"),
    path("admin/catalog/products/new/", views.product_edit, name="catalog-admin-product-new"),
    path("admin/catalog/products/<int:product_id>/", views.product_edit, name="catalog-admin-product"),
    path("admin/catalog/products/<int:product_id>/rules/", views.rule_add, name="catalog-admin-rule-add"),
    path("admin/catalog/products/<int:product_id>/rules/<int:rule_id>/delete/", views.rule_delete,
         name="catalog-admin-rule-delete"),
    path("admin/catalog/check/", views.check_page, name="catalog-admin-check-page"),
    path("admin/catalog/check/run/", views.configuration_check, name="catalog-admin-check"),
    path("admin/catalog/groups/", views.group_list, name="catalog-admin-groups"),
    path("admin/catalog/groups/<int:group_id>/delete/", views.group_delete, name="catalog-admin-group-delete"),
    path("admin/catalog/offers/", views.offer_list, name="catalog-admin-offers"),
    path("admin/catalog/offers/new/", views.offer_edit, name="catalog-admin-offer-new"),
    path("admin/catalog/offers/<int:offer_id>/", views.offer_edit, name="catalog-admin-offer"),
    path("admin/catalog/owners/", views.owners, name="catalog-admin-owners"),
    path("admin/catalog/owners/<int:customer_id>/", views.customer_owned, name="catalog-admin-owned"),
    path("admin/catalog/owners/<int:customer_id>/<int:owned_id>/delete/", views.owned_delete, name="catalog-admin-owned-delete"),
    path("admin/catalog/transfer/", views.import_export, name="catalog-admin-transfer"),
    path("admin/catalog/export.csv", views.export, {"fmt": "csv"}, name="catalog-admin-export-csv"),
    path("admin/catalog/export.json", views.export, {"fmt": "json"}, name="catalog-admin-export-json"),
    path("admin/catalog/audit/", views.audit, name="catalog-admin-audit"),
    path("catalog/search/<int:ticket_id>/", views.agent_search, name="catalog-agent-search"),
]
