from django.contrib import admin

from customers.models import Customer, CustomerMerge, Identity, MergeSuggestion, Organization


class IdentityInline(admin.TabularInline):
    model = Identity
    extra = 0
    fields = ("kind", "namespace", "value", "verified", "display_name", "last_seen_at")
    readonly_fields = ("last_seen_at",)


@admin.register(Customer)
class CustomerAdmin(admin.ModelAdmin):
    list_display = ("display_name", "lifecycle_stage", "language", "organization", "created_at")
    list_filter = ("lifecycle_stage",)
    search_fields = ("display_name", "identities__value")
    inlines = [IdentityInline]
    raw_id_fields = ("merged_into", "organization")


admin.site.register(Organization, search_fields=("name", "domain"))
admin.site.register(MergeSuggestion, list_display=("customer", "other", "reason", "status", "created_at"), list_filter=("status",), raw_id_fields=("customer", "other"))
admin.site.register(CustomerMerge, list_display=("into", "other", "merged_by", "merged_at", "undone_at"), raw_id_fields=("into", "other"))
