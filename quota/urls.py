from rest_framework.routers import SimpleRouter

from quota.apis import QuotaViewSet

router = SimpleRouter(trailing_slash=False)
router.register("quota", QuotaViewSet, basename="quota")

urlpatterns = router.urls
