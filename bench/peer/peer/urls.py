from django.urls import path

from peer.views import ProjectList, healthz

urlpatterns = [
    path("healthz", healthz),
    path("v1/projects", ProjectList.as_view()),
]
