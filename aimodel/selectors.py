from aimodel.models import PromptTemplate


def prompt_for(*, scene: str, category: str) -> str:
    template = PromptTemplate.objects.filter(scene=scene, category=category).only("text").first()
    if template is None:
        raise LookupError(f"no prompt template for {scene}/{category}")
    return template.text
