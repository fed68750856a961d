from django.urls import path

from . import views

app_name = "curation"
urlpatterns = [
    path("", views.project_list, name="project_list"),
    path("projects/<slug:slug>/", views.project_detail, name="project_detail"),
    path("projects/<slug:slug>/settings/", views.project_settings, name="project_settings"),
    path("projects/<slug:slug>/import-preview/", views.import_preview, name="import_preview"),
    path("projects/<slug:slug>/quality-scan/", views.quality_scan_start, name="quality_scan_start"),
    path("projects/<slug:slug>/freeze/", views.dataset_version_freeze, name="dataset_version_freeze"),
    path(
        "projects/<slug:slug>/duplicates/<int:cluster_id>/resolve/",
        views.duplicates_resolve,
        name="duplicates_resolve",
    ),
    path("projects/<slug:slug>/review/", views.review_next, name="review_next"),
    path("projects/<slug:slug>/examples/", views.example_list, name="example_list"),
    path("projects/<slug:slug>/examples/bulk/", views.example_bulk, name="example_bulk"),
    path("projects/<slug:slug>/examples/<int:pk>/review/", views.review_example, name="review_example"),
    path("projects/<slug:slug>/examples/<int:pk>/submit/", views.review_submit, name="review_submit"),
    path("projects/<slug:slug>/examples/<int:pk>/draft/", views.review_draft, name="review_draft"),
    path("projects/<slug:slug>/examples/<int:pk>/check/", views.review_check, name="review_check"),
    path("projects/<slug:slug>/examples/<int:pk>/render/", views.review_render, name="review_render"),
    path("projects/<slug:slug>/examples/<int:pk>/release/", views.review_release, name="review_release"),
    path("projects/<slug:slug>/examples/<int:pk>/history/", views.example_history, name="example_history"),
    path(
        "projects/<slug:slug>/examples/<int:pk>/restore/<int:version>/", views.example_restore, name="example_restore"
    ),
    path("projects/<slug:slug>/examples/<int:pk>/adjudicate/", views.adjudicate, name="adjudicate"),
    path("projects/<slug:slug>/disagreements/", views.disagreements, name="disagreements"),
]
