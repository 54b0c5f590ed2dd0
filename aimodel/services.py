"""Prompt template edits: each saved text is kept as a version with its editor and time."""

from __future__ import annotations

from django.db import transaction

from aimodel.models import PromptTemplate, PromptTemplateVersion


def prompt_template_update(*, template: PromptTemplate, text: str, editor_id: int) -> PromptTemplateVersion:
    """Save a new text and record it as the template's latest version. The first edit also keeps
    the text it replaces (the seeded one), so that text can be restored too."""
    with transaction.atomic():
        current = PromptTemplate.objects.select_for_update().only("text").get(pk=template.pk)
        if not PromptTemplateVersion.objects.filter(template=template).exists():
            PromptTemplateVersion.objects.create(template=template, text=current.text)
        template.text = text
        template.save(update_fields=["text", "updated_at"])
        return PromptTemplateVersion.objects.create(template=template, text=text, editor_id=editor_id)


def prompt_template_restore(*, version_id: int, editor_id: int) -> PromptTemplateVersion:
    """Put an earlier text back; the restore is itself a new version, so it can be undone."""
    with transaction.atomic():
        version = PromptTemplateVersion.objects.select_related("template").get(pk=version_id)
        template = PromptTemplate.objects.select_for_update().get(pk=version.template_id)
        template.text = version.text
        template.save(update_fields=["text", "updated_at"])
        return PromptTemplateVersion.objects.create(
            template=template, text=version.text, editor_id=editor_id, restored_from=version
        )
