from __future__ import annotations

from django.urls import path

from floor_app import views

urlpatterns = [path("hit", views.hit, name="hit")]
