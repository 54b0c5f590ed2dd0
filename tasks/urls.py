from django.urls import path

from tasks import apis

urlpatterns = [
    path("task/create", apis.TaskCreateApi.as_view(), name="task-create"),
    path("task/list", apis.TaskListApi.as_view(), name="task-list"),
    path("task/<str:task_id>", apis.TaskDetailApi.as_view(), name="task-detail"),
    path("task/<str:task_id>/cancel", apis.TaskCancelApi.as_view(), name="task-cancel"),
    path("task/<str:task_id>/status", apis.TaskStatusApi.as_view(), name="task-status"),
    path("webhooks/runninghub", apis.RunningHubWebhookApi.as_view(), name="runninghub-webhook"),
]
