from accounts.apis import AuthViewSet
from core.routers import SpecRouter

router = SpecRouter()
router.register("auth", AuthViewSet, basename="auth")

urlpatterns = router.urls
