from core.routers import SpecRouter
from media.apis import MediaViewSet

router = SpecRouter()
router.register("media", MediaViewSet, basename="media")

urlpatterns = router.urls
