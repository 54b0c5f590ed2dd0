"""The admin speaks one language per request (SPEC §8): an English browser sees no Chinese label
and a Chinese browser no English one, on every page support and superusers use."""

from __future__ import annotations

import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest
from django.test import Client

from accounts.tests.factories import logged_in, make_member, make_superuser
from aimodel.models import PromptTemplate
from quota.models import QuotaLedger
from tasks.models import FailureCode, Task, TaskStatus
from tasks.tests.factories import make_task

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("prompt_templates")]

CJK = re.compile(r"[\u3400-\u9fff\uff00-\uffef\u3000-\u303f]")
# Words that are the same in both languages: names, units, our own brand of provider.
SHARED_WORDS = {"RunningHub", "ID", "AI", "Control", "Command", "Mac"}
# Names stored in the database by the migrations, the same in every language.
STORED_NAMES = {"support"}
# Letters standing alone: ids, hashes, dotted code names (tasks.sweep) and numbers are not words.
WORD = re.compile(r"(?<![0-9A-Za-z*._-])[A-Za-z]{3,}(?![0-9A-Za-z*._-])")


class LabelText(HTMLParser):
    """The page's words, minus what people and the system stored (data is not a label): reasons,
    prompts, parameters, permission and group names; and minus scripts and styles."""

    DATA_CLASSES = ("field-reason", "field-text", "field-params_pretty", "field-name", "field-scheduler")

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[tuple[str, bool]] = []
        self.words: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("br", "img", "input", "meta", "link", "hr", "col", "source", "path", "use"):
            values = dict(attrs)
            if tag == "input" and values.get("type") in ("submit", "button") and values.get("value"):
                self.words.append(values["value"] or "")
            return
        classes = dict(attrs).get("class") or ""
        # Permission and group names are rows in the database, stored once in one language.
        stored_names = tag == "select" and dict(attrs).get("name") in ("user_permissions", "groups", "permissions")
        skip = (
            stored_names
            or tag in ("script", "style", "pre", "code", "svg", "textarea")
            or any(name in classes.split() for name in self.DATA_CLASSES)
        )
        self.stack.append((tag, skip or any(s for _, s in self.stack)))

    def handle_endtag(self, tag: str) -> None:
        while self.stack:
            if self.stack.pop()[0] == tag:
                break

    def handle_data(self, data: str) -> None:
        if data.strip() and not any(skip for _, skip in self.stack[-1:]):
            self.words.append(data.strip())


def labels(client: Client, url: str, language: str, action: str = "") -> list[str]:
    if action:  # the page an action asks its question on
        task = url.rsplit("/", 3)[-3]
        response = client.post(
            "/admin/tasks/task/", {"action": action, "_selected_action": [task]}, HTTP_ACCEPT_LANGUAGE=language
        )
    else:
        response = client.get(url, HTTP_ACCEPT_LANGUAGE=language)
    assert response.status_code == 200, url
    parser = LabelText()
    parser.feed(response.content.decode())
    return parser.words


def pages(data: dict[str, object]) -> list[str]:
    return [
        "/admin/",
        "/admin/tasks/task/",
        "/admin/tasks/task/?stuck=yes",
        f"/admin/tasks/task/{data['failed']}/change/",
        f"/admin/tasks/task/{data['success']}/change/",
        "/admin/accounts/user/",
        f"/admin/accounts/user/{data['member']}/change/",
        f"/admin/accounts/user/{data['member']}/quota/",
        "/admin/quota/quotaledger/",
        "/admin/aimodel/prompttemplate/",
        f"/admin/aimodel/prompttemplate/{data['template']}/change/",
        "/admin/token_blacklist/outstandingtoken/",
        "/admin/token_blacklist/blacklistedtoken/",
        "/admin/django_celery_beat/periodictask/",
        "/admin/django_celery_beat/intervalschedule/",
        "/admin/auth/group/",
        "/admin/tasks/",
        "/admin/accounts/",
    ]


def questions(data: dict[str, object]) -> list[tuple[str, str]]:
    page = f"/admin/tasks/task/{data['failed']}/change/"
    return [(page, "fail_and_refund"), (page, "retry")]


@pytest.fixture
def console() -> tuple[Client, dict[str, object]]:
    member = make_member(username="13800138000", phone="13800138000")
    failed = make_task(member, TaskStatus.FAILED, failure_code=FailureCode.PROCESSING_TIMEOUT, reason="timeout")
    success = make_task(member, TaskStatus.SUCCESS, audit="passed")
    QuotaLedger.objects.update(reason="test")
    Task.objects.update(error_message="")
    template = PromptTemplate.objects.first()
    assert template is not None
    data = {"member": member.pk, "failed": failed.pk, "success": success.pk, "template": template.pk}
    return logged_in(make_superuser(username="1001")), data


def test_an_english_browser_sees_no_chinese_label(console: tuple[Client, dict[str, object]]) -> None:
    client, data = console
    found = {
        f"{url} {action}": [word for word in labels(client, url, "en-US,en;q=0.9", action) if CJK.search(word)]
        for url, action in [*((url, "") for url in pages(data)), *questions(data)]
    }
    assert not {url: words for url, words in found.items() if words}


def test_a_chinese_browser_sees_no_english_label(console: tuple[Client, dict[str, object]]) -> None:
    client, data = console

    def english(word: str) -> bool:
        return any(token not in SHARED_WORDS | STORED_NAMES for token in WORD.findall(word))

    found = {
        f"{url} {action}": [word for word in labels(client, url, "zh-CN,zh;q=0.9", action) if english(word)]
        for url, action in [*((url, "") for url in pages(data)), *questions(data)]
    }
    assert not {url: words for url, words in found.items() if words}


@pytest.mark.parametrize("language,title", [("zh-CN", "页面不存在"), ("en", "Page not found")])
def test_not_found_is_a_console_page_with_a_way_back(language: str, title: str) -> None:
    response = logged_in(make_superuser()).get("/admin/no-such-page/", HTTP_ACCEPT_LANGUAGE=language)
    page = response.content.decode()
    assert response.status_code == 404
    assert f"<h1>{title}</h1>" in page and 'href="/admin/" class="button" id="back-home"' in page
    assert "admin/css/base.css" in page, "styled like the rest of the console"


@pytest.mark.parametrize("language,title", [("zh-CN", "没有权限"), ("en", "Permission denied")])
def test_forbidden_is_a_console_page_with_a_way_back(language: str, title: str) -> None:
    viewer = make_member()
    viewer.is_staff = True
    viewer.save(update_fields=["is_staff"])
    response = logged_in(viewer).get(f"/admin/accounts/user/{viewer.pk}/quota/", HTTP_ACCEPT_LANGUAGE=language)
    page = response.content.decode()
    assert response.status_code == 403
    assert f"<h1>{title}</h1>" in page and 'href="/admin/" class="button" id="back-home"' in page
    assert "admin/css/base.css" in page


LOCALE = Path(__file__).resolve().parents[2] / "locale"


@pytest.mark.django_db(False)
@pytest.mark.parametrize("language", ["en", "zh_Hans"])
def test_committed_catalogues_are_complete_and_compiled(language: str, tmp_path: Path) -> None:
    po = LOCALE / language / "LC_MESSAGES" / "django.po"
    text = po.read_text()
    assert 'msgstr ""\n\n' not in text.split("\n\n", 1)[1] + "\n\n", "every label has its translation"
    if shutil.which("msgfmt") is None:
        pytest.skip("gettext is not installed (apt-get install gettext)")
    subprocess.run(["msgfmt", "--check", "-o", str(tmp_path / "django.mo"), str(po)], check=True)
    committed = po.with_suffix(".mo").read_bytes()
    assert (tmp_path / "django.mo").read_bytes() == committed, f"compile {po} again (msgfmt) and commit the .mo"
