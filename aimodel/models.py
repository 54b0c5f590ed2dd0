from django.db import models


class Scene(models.TextChoices):
    STREET = "street", "街拍"
    STUDIO = "studio", "影棚"
    INDOOR = "indoor", "室内"


class Category(models.TextChoices):
    SHOES = "shoes", "鞋"
    DRESS = "dress", "连衣裙"
    HOODIE = "hoodie", "卫衣"
    COAT = "coat", "外套"


class PromptTemplate(models.Model):
    """The prompt sent to RunningHub for one scene × category; support staff edit the text."""

    scene = models.CharField("场景", max_length=10, choices=Scene.choices)
    category = models.CharField("品类", max_length=10, choices=Category.choices)
    text = models.TextField("提示词")
    updated_at = models.DateTimeField("更新时间", auto_now=True)

    class Meta:
        verbose_name = "提示词模板"
        verbose_name_plural = "提示词模板"
        ordering = ["scene", "category"]
        constraints = [models.UniqueConstraint(fields=["scene", "category"], name="one_prompt_per_scene_category")]

    def __str__(self) -> str:
        return f"{self.get_scene_display()} · {self.get_category_display()}"
