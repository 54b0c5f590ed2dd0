from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _


class Scene(models.TextChoices):
    STREET = "street", _("街拍")
    STUDIO = "studio", _("影棚")
    INDOOR = "indoor", _("室内")


class Category(models.TextChoices):
    SHOES = "shoes", _("鞋")
    DRESS = "dress", _("连衣裙")
    HOODIE = "hoodie", _("卫衣")
    COAT = "coat", _("外套")


class PromptTemplate(models.Model):
    """The prompt sent to RunningHub for one scene × category; support staff edit the text."""

    scene = models.CharField(_("场景"), max_length=10, choices=Scene.choices)
    category = models.CharField(_("品类"), max_length=10, choices=Category.choices)
    text = models.TextField(_("提示词"))
    updated_at = models.DateTimeField(_("更新时间"), auto_now=True)

    class Meta:
        verbose_name = _("提示词模板")
        verbose_name_plural = _("提示词模板")
        ordering = ["scene", "category"]
        constraints = [models.UniqueConstraint(fields=["scene", "category"], name="one_prompt_per_scene_category")]

    def __str__(self) -> str:
        return f"{self.get_scene_display()} · {self.get_category_display()}"


class PromptTemplateVersion(models.Model):
    """One saved text of a prompt template: every edit adds a row, so an earlier text can be seen
    and restored."""

    template = models.ForeignKey(
        PromptTemplate, on_delete=models.CASCADE, related_name="versions", verbose_name=_("提示词模板"), db_index=False
    )
    text = models.TextField(_("提示词"))
    editor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("编辑人"),
    )
    restored_from = models.ForeignKey(
        "self", on_delete=models.SET_NULL, null=True, blank=True, related_name="+", verbose_name=_("恢复自")
    )
    created_at = models.DateTimeField(_("时间"), auto_now_add=True)

    class Meta:
        verbose_name = _("提示词版本")
        verbose_name_plural = _("提示词版本")
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["template", "-created_at"], name="prompt_version_recent")]

    def __str__(self) -> str:
        return f"{self.template} @ {self.created_at:%Y-%m-%d %H:%M:%S}"
