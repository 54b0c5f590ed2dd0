import pytest
from django.contrib.admin.models import LogEntry

from accounts.tests.factories import logged_in, make_superuser, make_support
from aimodel.models import PromptTemplate, PromptTemplateVersion
from aimodel.selectors import prompt_for

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("prompt_templates")]


def change_url(template: PromptTemplate) -> str:
    return f"/admin/aimodel/prompttemplate/{template.pk}/change/"


def edit(template: PromptTemplate, text: str) -> dict[str, object]:
    """The change form as the browser sends it (the versions inline adds its management form)."""
    versions = PromptTemplateVersion.objects.filter(template=template).count()
    management = {"TOTAL_FORMS": versions, "INITIAL_FORMS": versions, "MIN_NUM_FORMS": 0, "MAX_NUM_FORMS": 1000}
    return {"text": text, **{f"versions-{key}": value for key, value in management.items()}}


def test_edits_keep_versions_and_a_superuser_restores_one() -> None:
    template = PromptTemplate.objects.get(scene="studio", category="shoes")
    seeded = template.text
    admin = make_superuser()
    client = logged_in(admin)
    for text in ("first edit", "second edit"):
        assert client.post(change_url(template), edit(template, text)).status_code == 302
    versions = list(PromptTemplateVersion.objects.filter(template=template).order_by("created_at", "id"))
    assert [(v.text, v.editor) for v in versions] == [(seeded, None), ("first edit", admin), ("second edit", admin)]

    page = client.get(change_url(template)).content.decode()
    assert "历史版本" in page and page.count('class="restore-version"') == 3

    restore = f"/admin/aimodel/prompttemplate/{template.pk}/restore/{versions[0].pk}/"
    response = client.post(restore)
    assert response.status_code == 302 and response["Location"] == change_url(template)
    assert prompt_for(scene="studio", category="shoes") == seeded
    latest = PromptTemplateVersion.objects.filter(template=template).first()
    assert latest is not None and (latest.text, latest.restored_from, latest.editor) == (seeded, versions[0], admin)
    assert LogEntry.objects.filter(user=admin, object_id=str(template.pk)).count() == 3


def test_support_reads_versions_but_cannot_restore() -> None:
    template = PromptTemplate.objects.get(scene="street", category="dress")
    logged_in(make_superuser()).post(change_url(template), edit(template, "edited"))
    version = PromptTemplateVersion.objects.filter(template=template).last()
    assert version is not None
    client = logged_in(make_support())
    page = client.get(change_url(template)).content.decode()
    assert "历史版本" in page and "restore-version" not in page
    assert client.post(f"/admin/aimodel/prompttemplate/{template.pk}/restore/{version.pk}/").status_code == 403
    assert PromptTemplate.objects.get(pk=template.pk).text == "edited"
