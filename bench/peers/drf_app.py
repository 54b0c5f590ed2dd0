"""The DRF peer's one view: the create transaction in plain DRF."""

from __future__ import annotations

import json
import os
import uuid
from typing import Any

from django.db import connection, transaction
from django.urls import path
from django.utils import timezone
from rest_framework.decorators import api_view
from rest_framework.request import Request
from rest_framework.response import Response

STATEMENTS = json.loads(open(os.environ["BENCH_CREATE_SQL"]).read())  # noqa: SIM115


@api_view(["POST"])
def create(request: Request) -> Response:
    user_id = request.user.pk
    task_id = uuid.uuid4()
    now = timezone.now()
    body: Any = request.data
    params: dict[str, Any] = {"user": user_id, "task": task_id, "url": str(body["inputImageUrl"]), "now": now}
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(STATEMENTS["lock"], params)
        remaining, is_member = cursor.fetchone()
        if not is_member or remaining < 1:
            return Response({"error": "quota"}, status=403)
        cursor.execute(STATEMENTS["deduct"], params)
        params["balance"] = cursor.fetchone()[0]
        cursor.execute(STATEMENTS["task"], params)
        cursor.execute(STATEMENTS["ledger"], params)
    return Response({"id": str(task_id), "status": "pending", "createdAt": now.isoformat()}, status=201)


urlpatterns = [path("api/task/create", create)]
