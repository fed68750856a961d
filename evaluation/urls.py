from django.urls import path

from . import views

app_name = "evaluation"
urlpatterns = [
    path("projects/<slug:slug>/evaluations/", views.evaluation_list, name="evaluation_list"),
    path("projects/<slug:slug>/evaluations/<int:pk>/", views.evaluation_detail, name="evaluation_detail"),
    path("projects/<slug:slug>/evaluations/<int:pk>/examples/", views.evaluation_examples, name="evaluation_examples"),
    path("projects/<slug:slug>/evaluations/<int:pk>/rate/", views.evaluation_rate, name="evaluation_rate"),
    path(
        "projects/<slug:slug>/evaluations/<int:pk>/send-to-review/",
        views.evaluation_send_to_review,
        name="evaluation_send_to_review",
    ),
    path("projects/<slug:slug>/generate/", views.generation_start, name="generation_start"),
    path("projects/<slug:slug>/generate/<int:pk>/", views.generation_detail, name="generation_detail"),
    path("projects/<slug:slug>/history/", views.project_history, name="project_history"),
    path("projects/<slug:slug>/prompts/", views.prompt_variants, name="prompt_variants"),
]
