"""The router that lays viewsets on SPEC §4's paths: `<prefix>/create`, `<prefix>/list`,
`<prefix>/<id>` and `<prefix>/<id>/<action>`, with no trailing slash."""

from rest_framework.routers import DynamicRoute, Route, SimpleRouter


class SpecRouter(SimpleRouter):
    routes = [
        Route(
            url=r"^{prefix}/list{trailing_slash}$",
            mapping={"get": "list"},
            name="{basename}-list",
            detail=False,
            initkwargs={"suffix": "List"},
        ),
        Route(
            url=r"^{prefix}/create{trailing_slash}$",
            mapping={"post": "create"},
            name="{basename}-create",
            detail=False,
            initkwargs={"suffix": "Create"},
        ),
        # Actions on the collection (`/api/task/batch`, `/api/auth/login`) before the id route, so
        # that their names are never read as ids.
        DynamicRoute(
            url=r"^{prefix}/{url_path}{trailing_slash}$", name="{basename}-{url_name}", detail=False, initkwargs={}
        ),
        Route(
            url=r"^{prefix}/{lookup}{trailing_slash}$",
            mapping={"get": "retrieve"},
            name="{basename}-detail",
            detail=True,
            initkwargs={"suffix": "Instance"},
        ),
        DynamicRoute(
            url=r"^{prefix}/{lookup}/{url_path}{trailing_slash}$",
            name="{basename}-{url_name}",
            detail=True,
            initkwargs={},
        ),
    ]

    def __init__(self) -> None:
        super().__init__(trailing_slash=False)
