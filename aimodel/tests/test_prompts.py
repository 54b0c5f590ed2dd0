import pytest

from aimodel.models import Category, PromptTemplate, Scene
from aimodel.selectors import prompt_for

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("prompt_templates")]


def test_a_distinct_seeded_prompt_for_every_scene_and_category() -> None:
    templates = {(t.scene, t.category): t.text for t in PromptTemplate.objects.all()}
    assert set(templates) == {(s, c) for s in Scene.values for c in Category.values}
    assert len(set(templates.values())) == 12
    for (scene, category), text in templates.items():
        assert "twelve" in text.lower()
        assert text == prompt_for(scene=scene, category=category)


def test_edited_text_is_what_gets_sent() -> None:
    PromptTemplate.objects.filter(scene="studio", category="shoes").update(text="edited by support")
    assert prompt_for(scene="studio", category="shoes") == "edited by support"
