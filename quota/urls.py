from django.urls import path

from quota.apis import QuotaApi

urlpatterns = [path("quota", QuotaApi.as_view(), name="quota")]
