from django.urls import path

from .views import examples, imports, projects, review, versions

app_name = "curation"
urlpatterns = [
    path("", projects.project_list, name="project_list"),
    path("projects/<slug:slug>/", projects.project_detail, name="project_detail"),
    path("projects/<slug:slug>/settings/", projects.project_settings, name="project_settings"),
    path("projects/<slug:slug>/import-preview/", imports.import_preview, name="import_preview"),
    path("projects/<slug:slug>/quality-scan/", projects.quality_scan_start, name="quality_scan_start"),
    path("projects/<slug:slug>/freeze/", projects.dataset_version_freeze, name="dataset_version_freeze"),
    path(
        "projects/<slug:slug>/versions/<int:pk>/diff/",
        versions.dataset_version_diff,
        name="dataset_version_diff",
    ),
    path(
        "projects/<slug:slug>/duplicates/<int:cluster_id>/resolve/",
        projects.duplicates_resolve,
        name="duplicates_resolve",
    ),
    path("projects/<slug:slug>/review/", review.review_next, name="review_next"),
    path("projects/<slug:slug>/examples/", examples.example_list, name="example_list"),
    path("projects/<slug:slug>/examples/bulk/", examples.example_bulk, name="example_bulk"),
    path("projects/<slug:slug>/examples/count/", examples.example_count, name="example_count"),
    path("projects/<slug:slug>/examples/<int:pk>/review/", review.review_example, name="review_example"),
    path("projects/<slug:slug>/examples/<int:pk>/submit/", review.review_submit, name="review_submit"),
    path("projects/<slug:slug>/examples/<int:pk>/draft/", review.review_draft, name="review_draft"),
    path("projects/<slug:slug>/examples/<int:pk>/check/", review.review_check, name="review_check"),
    path("projects/<slug:slug>/examples/<int:pk>/render/", review.review_render, name="review_render"),
    path("projects/<slug:slug>/examples/<int:pk>/release/", review.review_release, name="review_release"),
    path("projects/<slug:slug>/examples/<int:pk>/history/", examples.example_history, name="example_history"),
    path(
        "projects/<slug:slug>/examples/<int:pk>/restore/<int:version>/",
        examples.example_restore,
        name="example_restore",
    ),
    path("projects/<slug:slug>/examples/<int:pk>/adjudicate/", review.adjudicate, name="adjudicate"),
    path("projects/<slug:slug>/disagreements/", review.disagreements, name="disagreements"),
]
