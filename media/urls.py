from django.urls import path

from media.apis import UploadApi

urlpatterns = [path("upload", UploadApi.as_view(), name="media-upload")]
