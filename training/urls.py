from django.urls import path

from . import views

app_name = "training"
urlpatterns = [
    path("projects/<slug:slug>/runs/", views.run_list, name="run_list"),
    path("projects/<slug:slug>/runs/preflight/", views.run_preflight, name="run_preflight"),
    path("projects/<slug:slug>/runs/<int:pk>/", views.run_detail, name="run_detail"),
    path("projects/<slug:slug>/runs/<int:pk>/cancel/", views.run_cancel, name="run_cancel"),
    path("projects/<slug:slug>/runs/<int:pk>/merge/", views.run_merge, name="run_merge"),
    path("projects/<slug:slug>/runs/<int:pk>/chat/", views.run_chat, name="run_chat"),
    path("projects/<slug:slug>/runs/<int:pk>/chat/<int:reply>/", views.run_chat_reply, name="run_chat_reply"),
    path("projects/<slug:slug>/runs/<int:pk>/artifacts/<slug:name>/", views.run_artifact, name="run_artifact"),
]
