"""Knowledge URLs: the public help center (/help/), the agent panel (/app/kb/) and the admin
screens (/app/admin/kb/). The API is registered on the main router (/api/v1/kb/articles/)."""

from __future__ import annotations

from django.urls import path

from knowledge.views import admin, agent, help

help_urlpatterns = [
    path("", help.help_root, name="help-root"),
    path("files/<uuid:public_id>/<str:name>", help.help_file, name="help-file"),
    path("<str:lang>/", help.help_home, name="help-home"),
    path("<str:lang>/search/", help.help_search, name="help-search"),
    path("<str:lang>/categories/<slug:slug>/", help.help_category, name="help-category"),
    path("<str:lang>/articles/<slug:slug>/", help.help_article, name="help-article"),
    path("<str:lang>/articles/<slug:slug>/feedback/", help.help_feedback, name="help-feedback"),
]

agent_urlpatterns = [
    path("panel/<int:ticket_id>/", agent.kb_panel, name="kb-panel"),
    path("from-ticket/<int:ticket_id>/", agent.kb_from_ticket, name="kb-from-ticket"),
]

admin_urlpatterns = [
    path("", admin.article_list, name="kb-admin"),
    path("new/", admin.article_new, name="kb-admin-new"),
    path("preview/", admin.preview, name="kb-admin-preview"),
    path("transfer/", admin.transfer_page, name="kb-admin-transfer"),
    path("export.<str:fmt>", admin.export, name="kb-admin-export"),
    path("<int:article_id>/", admin.article_edit, name="kb-admin-edit"),
    path("<int:article_id>/attachments/", admin.attachment_upload, name="kb-admin-attach"),
    path("<int:article_id>/versions/", admin.versions, name="kb-admin-versions"),
    path("<int:article_id>/versions/<int:number>/restore/", admin.restore, name="kb-admin-restore"),
    path("<int:article_id>/<str:lang>/", admin.article_edit, name="kb-admin-edit-lang"),
]
