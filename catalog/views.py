"""Catalog screens: the admin editor under /app/admin/catalog/ (admins only) and the agents'
product search panel. Views check and parse; catalog.services writes."""

from __future__ import annotations

import mimetypes

from django.contrib import messages
from django.core.paginator import Paginator
from django.db.models import Count, Prefetch
from django.http import FileResponse, Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from catalog import search, selectors, services, transfer
from catalog.forms import (
    ConfigurationForm,
    GroupForm,
    ImportForm,
    OfferForm,
    OwnedProductForm,
    ProductForm,
    RuleForm,
)
from catalog.models import ChangeLog, ExclusiveGroup, Offer, OwnedProduct, Product, ProductImage, Rule
from customers.models import Customer
from omnicenter import roles
from omnicenter.transfer import export_response
from tickets import selectors as ticket_selectors
from tickets.views import admin_required, staff_required

PAGE_SIZE = 50



def _changes(queryset, limit: int = 50) -> list[ChangeLog]:
    return list(queryset.select_related("actor")[:limit])


# ---------------------------------------------------------------------------------------------
# Products


@require_GET
@admin_required
def product_list(request):
    query = request.GET.get("q", "").strip()
    status = request.GET.get("status", "")
    queryset = selectors.products_with_texts().annotate(rule_count=Count("rules", distinct=True))
    if status in Product.Status.values:
        queryset = queryset.filter(status=status)
    if query:
        ids = search.search_product_ids(query, include_inactive=True)
        by_id = {p.pk: p for p in queryset.filter(pk__in=ids)}
        rows = [by_id[pk] for pk in ids if pk in by_id]
        page = Paginator(rows, PAGE_SIZE).get_page(request.GET.get("page"))
    else:
        page = Paginator(queryset.order_by("sku"), PAGE_SIZE).get_page(request.GET.get("page"))
    rows = [(product, selectors.product_text_for(product, language=request.LANGUAGE_CODE)) for product in page]
    return render(request, "catalog/admin/product_list.html", {
        "page": page, "rows": rows, "q": query, "status": status, "statuses": Product.Status.choices,
    })


def _product_context(request, product: Product | None, form: ProductForm) -> dict:
    context = {"form": form, "product": product}
    if product is not None:
        context.update({
            "rules": _rules_of(product),
            "rule_form": RuleForm(),
            "groups": product.exclusive_groups.prefetch_related("products"),
            "images": product.images.all(),
            "config_form": ConfigurationForm(initial={"lines": product.sku, "language": request.LANGUAGE_CODE}),
            "changes": _changes(product.changes.all()),
            "owners": product.owners.count(),
        })
    return context


def _rules_of(product: Product):
    return Rule.objects.filter(product=product).select_related("other", "product").order_by("kind", "pk")


@require_http_methods(["GET", "POST"])
@admin_required
def product_edit(request, product_id: int | None = None):
    product = get_object_or_404(selectors.products_with_texts(), pk=product_id) if product_id else None
    if request.method == "GET":
        form = ProductForm(initial=ProductForm.initial_for(product) if product else {"status": Product.Status.DRAFT,
                                                                                     "source_language": "en"})
        return render(request, "catalog/admin/product_edit.html", _product_context(request, product, form))
    form = ProductForm(request.POST, request.FILES)
    if form.is_valid():
        try:
            saved = services.product_save(product=product, by=request.user, values=form.values(), texts=form.texts(),
                                          prices=form.cleaned_data["prices"])
            if form.cleaned_data.get("image"):
                services.product_image_add(product=saved, by=request.user, file=form.cleaned_data["image"],
                                           alt=form.cleaned_data["image_alt"])
        except services.CatalogError as exc:
            form.add_error(None, exc.message)
        else:
            messages.success(request, _("Product %(sku)s saved.") % {"sku": saved.sku})
            return redirect("catalog-admin-product", product_id=saved.pk)
    return render(request, "catalog/admin/product_edit.html", _product_context(request, product, form), status=400)


@require_POST
@admin_required
def rule_add(request, product_id: int):
    product = get_object_or_404(Product, pk=product_id)
    form = RuleForm(request.POST)
    status = 200
    if form.is_valid():
        try:
            services.rule_create(product=product, by=request.user, kind=form.cleaned_data["kind"], other=form.cleaned_data["other"],
                                 min_quantity=form.cleaned_data["min_quantity"], max_quantity=form.cleaned_data["max_quantity"])
        except services.CatalogError as exc:
            form.add_error(None, exc.message)
            status = 400
        else:
            form = RuleForm()
    else:
        status = 400
    if not request.htmx:
        if status == 200:
            messages.success(request, _("Rule added."))
        else:
            messages.error(request, " ".join(str(e) for errors in form.errors.values() for e in errors))
        return redirect("catalog-admin-product", product_id=product.pk)
    return render(request, "catalog/admin/_rules.html", {
        "product": product, "rules": _rules_of(product), "rule_form": form,
        "oob_changes": True, "changes": _changes(product.changes.all()),  # the history beside it, swapped out of band
    }, status=status)


@require_POST
@admin_required
def rule_delete(request, product_id: int, rule_id: int):
    rule = get_object_or_404(Rule.objects.select_related("product", "other"), pk=rule_id, product_id=product_id)
    services.rule_delete(rule=rule, by=request.user)
    if not request.htmx:
        messages.success(request, _("Rule deleted."))
        return redirect("catalog-admin-product", product_id=product_id)
    return render(request, "catalog/admin/_rules.html", {
        "product": rule.product, "rules": _rules_of(rule.product), "rule_form": RuleForm(),
        "oob_changes": True, "changes": _changes(rule.product.changes.all()),
    })


@require_POST
@admin_required
def configuration_check(request):
    form = ConfigurationForm(request.POST)
    result = None
    if form.is_valid():
        result = services.validate_configuration(items=form.cleaned_data["lines"], market=form.cleaned_data["market"],
                                                 language=form.cleaned_data["language"])
    return render(request, "catalog/admin/_check.html", {"config_form": form, "result": result},
                  status=200 if form.is_valid() else 400)


@require_GET
@admin_required
def check_page(request):
    return render(request, "catalog/admin/check.html", {
        "config_form": ConfigurationForm(initial={"language": request.LANGUAGE_CODE}),
    })


# ---------------------------------------------------------------------------------------------
# Groups and offers


@require_http_methods(["GET", "POST"])
@admin_required
def group_list(request):
    form = GroupForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            services.group_save(group=None, by=request.user, name=form.cleaned_data["name"], products=form.cleaned_data["products"])
        except services.CatalogError as exc:
            form.add_error("name", exc.message)
        else:
            messages.success(request, _("Group saved."))
            return redirect("catalog-admin-groups")
    groups = ExclusiveGroup.objects.prefetch_related("products")
    return render(request, "catalog/admin/groups.html", {"groups": groups, "form": form},
                  status=400 if request.method == "POST" else 200)


@require_POST
@admin_required
def group_delete(request, group_id: int):
    services.group_delete(group=get_object_or_404(ExclusiveGroup, pk=group_id), by=request.user)
    messages.success(request, _("Group deleted."))
    return redirect("catalog-admin-groups")


@require_GET
@admin_required
def offer_list(request):
    offers = Offer.objects.prefetch_related("products").order_by("code")
    return render(request, "catalog/admin/offers.html", {"offers": offers, "today": timezone.localdate()})


@require_http_methods(["GET", "POST"])
@admin_required
def offer_edit(request, offer_id: int | None = None):
    offer = get_object_or_404(Offer, pk=offer_id) if offer_id else None
    if request.method == "GET":
        form = OfferForm(initial=OfferForm.initial_for(offer) if offer else {"active": True})
    else:
        form = OfferForm(request.POST)
        if form.is_valid():
            try:
                saved = services.offer_save(
                    offer=offer, by=request.user, values=form.values(), products=form.cleaned_data["products"],
                    requires_owned=form.cleaned_data["requires_owned"], excludes_owned=form.cleaned_data["excludes_owned"],
                )
            except services.CatalogError as exc:
                form.add_error(None, exc.message)
            else:
                messages.success(request, _("Offer %(code)s saved.") % {"code": saved.code})
                return redirect("catalog-admin-offer", offer_id=saved.pk)
    changes = _changes(ChangeLog.objects.filter(object_type="offer", object_id=str(offer.pk))) if offer else []
    return render(request, "catalog/admin/offer_edit.html", {"form": form, "offer": offer, "changes": changes},
                  status=400 if request.method == "POST" else 200)


# ---------------------------------------------------------------------------------------------
# Owned products


@require_GET
@admin_required
def owners(request):
    query = request.GET.get("q", "").strip()
    customers = Customer.objects.filter(merged_into__isnull=True).annotate(owned=Count("owned_products"))
    customers = customers.filter(display_name__icontains=query) if query else customers.filter(owned__gt=0)
    page = Paginator(customers.order_by("display_name", "pk"), PAGE_SIZE).get_page(request.GET.get("page"))
    return render(request, "catalog/admin/owners.html", {"page": page, "q": query})


@require_http_methods(["GET", "POST"])
@admin_required
def customer_owned(request, customer_id: int):
    customer = get_object_or_404(Customer, pk=customer_id)
    form = OwnedProductForm(request.POST or None, initial={"status": OwnedProduct.Status.ACTIVE})
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            services.owned_product_save(owned=None, by=request.user, customer=customer, values=data)
        except services.CatalogError as exc:
            form.add_error(None, exc.message)
        else:
            messages.success(request, _("Product added to %(customer)s.") % {"customer": customer})
            return redirect("catalog-admin-owned", customer_id=customer.pk)
    owned = selectors.owned_products(customer)
    # An owned product's change-log row reads "<customer id>:<product id>:<reference>".
    changes = _changes(ChangeLog.objects.filter(object_type="ownedproduct", object_repr__startswith=f"{customer.pk}:"))
    rows = [(item, selectors.product_text_for(item.product, language=request.LANGUAGE_CODE)) for item in owned]
    return render(request, "catalog/admin/customer_owned.html", {
        "customer": customer, "rows": rows, "form": form, "changes": changes,
    }, status=400 if request.method == "POST" else 200)


@require_POST
@admin_required
def owned_delete(request, customer_id: int, owned_id: int):
    owned = get_object_or_404(OwnedProduct.objects.select_related("product"), pk=owned_id, customer_id=customer_id)
    services.owned_product_delete(owned=owned, by=request.user)
    messages.success(request, _("Removed."))
    return redirect("catalog-admin-owned", customer_id=customer_id)


# ---------------------------------------------------------------------------------------------
# Import, export, audit


@require_http_methods(["GET", "POST"])
@admin_required
def import_export(request):
    form = ImportForm(request.POST or None, request.FILES or None)
    report = None
    status = 200
    if request.method == "POST":
        if form.is_valid():
            upload = form.cleaned_data["file"]
            try:
                report = transfer.import_products(content=upload["content"], fmt=upload["format"], by=request.user,
                                                  dry_run=form.cleaned_data["dry_run"])
            except transfer.ImportFileError as exc:
                form.add_error("file", str(exc))
        if not form.is_valid() or (report and not report.ok):
            status = 400
    return render(request, "catalog/admin/import_export.html", {"form": form, "report": report}, status=status)


@require_GET
@admin_required
def export(request, fmt: str):
    content = transfer.export_csv() if fmt == "csv" else transfer.export_json()
    return export_response(content, fmt=fmt, name="products")


@require_GET
@admin_required
def audit(request):
    page = Paginator(ChangeLog.objects.select_related("actor", "product"), 100).get_page(request.GET.get("page"))
    return render(request, "catalog/admin/audit.html", {"page": page})


@require_GET
def product_image(request, image_id: int):
    """A product image: anyone may see those of active products (the portal and bots show them),
    staff those of drafts and retired products too."""
    image = get_object_or_404(ProductImage.objects.select_related("product"), pk=image_id)
    if image.product.status != Product.Status.ACTIVE and not roles.is_agent(request.user):
        raise Http404
    content_type = mimetypes.guess_type(image.file.name)[0] or "application/octet-stream"
    response = FileResponse(image.file.open("rb"), content_type=content_type)
    response["X-Content-Type-Options"] = "nosniff"
    response["Content-Security-Policy"] = "default-src 'none'; sandbox"
    response["Cache-Control"] = "public, max-age=300" if image.product.status == Product.Status.ACTIVE else "private, no-store"
    return response


# ---------------------------------------------------------------------------------------------
# Agents: product search panel on the ticket page


@require_GET
@staff_required
def agent_search(request, ticket_id: int):
    ticket = ticket_selectors.ticket_for_agent(request.user, ticket_id)
    channel = ticket.origin_channel.kind if ticket.origin_channel_id else ""
    language = ticket.customer.language or request.LANGUAGE_CODE
    query = request.GET.get("q", "").strip()
    products = []
    if query:
        ids = search.search_product_ids(query)[:10]
        by_id = {p.pk: p for p in selectors.products_with_texts().filter(pk__in=ids)}
        products = [by_id[pk] for pk in ids if pk in by_id]
    rows = [(p, selectors.product_text_for(p, language=language, channel=channel)) for p in products]
    return render(request, "catalog/_search_results.html", {
        "rows": rows, "q": query, "channel": channel, "language": language,
        "market": selectors.customer_market(ticket.customer),
    })


def owned_panel_context(request, customer) -> dict | None:
    """The "Products owned" sidebar panel (registered in CatalogConfig.ready)."""
    if request is None or not roles.is_agent(request.user):
        return None
    owned = list(
        OwnedProduct.objects.filter(customer=customer).select_related("product")
        .prefetch_related(Prefetch("product__texts")).order_by("status", "-start_date", "-pk")[:20]
    )
    language = request.LANGUAGE_CODE
    return {"owned_rows": [(item, selectors.product_text_for(item.product, language=language)) for item in owned],
            "is_admin": roles.is_admin(request.user)}


def search_panel_context(request, ticket) -> dict | None:
    if request is None or not roles.is_agent(request.user):
        return None
    return {"ticket": ticket}

