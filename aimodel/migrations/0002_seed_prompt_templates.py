from django.db import migrations

SCENES = {
    "street": "on a sunlit city street with shop fronts, crosswalks and soft background blur",
    "studio": "in a clean photo studio with a seamless light-grey backdrop and soft key and fill lights",
    "indoor": "in a bright modern apartment with a sofa, wooden floor and window light",
}
CATEGORIES = {
    "shoes": (
        "wearing the product shoes; keep their exact colour, sole, laces and logo placement",
        "include close-ups at ankle height, walking steps, a seated side view and a heel-to-toe detail",
    ),
    "dress": (
        "wearing the product dress; keep its exact fabric, print, neckline and hem length",
        "include a full-length front view, a twirl showing the skirt movement, a back view and a waist detail",
    ),
    "hoodie": (
        "wearing the product hoodie; keep its exact colour, drawstrings, pocket and any print",
        "include hood up and hood down, hands in the front pocket, a relaxed lean and a sleeve-cuff detail",
    ),
    "coat": (
        "wearing the product coat; keep its exact cut, buttons, collar, lining and length",
        "include the coat open and closed, a collar turned up, a mid-stride view and a shoulder-line detail",
    ),
}


def prompt(scene: str, category: str) -> str:
    place = SCENES[scene]
    wearing, shots = CATEGORIES[category]
    return (
        f"A storyboard of twelve e-commerce photos of one fashion model {place}, {wearing}. "
        f"Twelve distinct shots with varied poses, camera angles (front, three-quarter, side, back, low and high) "
        f"and framing (full body, half body, close-up); {shots}. "
        "Same model, same product in every shot, natural skin, realistic lighting, sharp focus on the product, "
        "no text, no watermark."
    )


def seed(apps, schema_editor):
    PromptTemplate = apps.get_model("aimodel", "PromptTemplate")
    for scene in SCENES:
        for category in CATEGORIES:
            PromptTemplate.objects.get_or_create(scene=scene, category=category, defaults={"text": prompt(scene, category)})


def unseed(apps, schema_editor):
    apps.get_model("aimodel", "PromptTemplate").objects.all().delete()


class Migration(migrations.Migration):
    dependencies = [("aimodel", "0001_initial")]
    operations = [migrations.RunPython(seed, unseed)]
