from rest_framework.routers import SimpleRouter

from core.routers import SpecRouter
from tasks.apis import RunningHubWebhookViewSet, TaskViewSet

tasks_router = SpecRouter()
tasks_router.register("task", TaskViewSet, basename="task")
webhooks_router = SimpleRouter(trailing_slash=False)
webhooks_router.register("webhooks", RunningHubWebhookViewSet, basename="webhook")

urlpatterns = tasks_router.urls + webhooks_router.urls
