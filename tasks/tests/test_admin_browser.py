"""A support agent in a real (headless) Chromium, against the product as deployed: DEBUG off, no
proxy, static files collected and served by the product itself (WhiteNoise). Saves the
screenshots the README shows (docs/screenshots/)."""

from __future__ import annotations

import os
import re
import urllib.request
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any, cast

import pytest
from django.conf import settings as django_settings
from django.core.management import call_command
from django.test.testcases import LiveServerThread
from django.test.utils import override_settings

from accounts.models import User
from accounts.tests.factories import PASSWORD, make_member, make_support
from config.settings import STORAGES as PRODUCTION_STORAGES
from media.tests.images import product_photo
from quota.models import LedgerKind, QuotaLedger
from tasks.models import FailureCode, Task, TaskEvent, TaskStatus, TaskType
from tasks.tests.factories import make_task

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
# Screenshots go to the README's folder only when asked (ADMIN_SCREENSHOTS=1), so an ordinary
# test run leaves the work tree clean.
README_SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
CJK = re.compile(r"[\u3400-\u9fff\uff00-\uffef]")

pytestmark = [
    pytest.mark.skipif(not CHROMIUM.exists(), reason="Chromium is not installed (make browser)"),
    pytest.mark.django_db(transaction=True),
    pytest.mark.slow,
]


@pytest.fixture(scope="module")
def console(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The product's own WSGI application on loopback, as `make run` starts it: collectstatic
    first, then the server, which serves /static/ through WhiteNoise. Unlike pytest-django's
    live_server there is no test handler in front of it that would serve static files instead."""
    assert not django_settings.DEBUG
    static_root = tmp_path_factory.mktemp("static")
    with override_settings(STATIC_ROOT=static_root, STORAGES=PRODUCTION_STORAGES):
        call_command("collectstatic", interactive=False, verbosity=0)
        # The product's handler as it is, with no test handler for static files wrapped around it.
        server = LiveServerThread("127.0.0.1", static_handler=cast(Any, lambda application: application))
        server.daemon = True
        server.start()
        server.is_ready.wait()
        if server.error:
            raise server.error
        yield f"http://127.0.0.1:{server.port}"
        server.terminate()


def chromium(tmp_path: Path, languages: str) -> Any:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-proxy-server",
        "--window-size=1440,1000",
        f"--user-data-dir={tmp_path / ('chromium-' + languages[:2])}",
    ):
        options.add_argument(flag)
    # Headless Chromium sends Accept-Language from its preferences, not from --lang.
    options.add_experimental_option("prefs", {"intl.accept_languages": languages})
    driver = webdriver.Chrome(options=options, service=Service(executable_path=str(CHROMEDRIVER)))
    driver.implicitly_wait(5)
    return driver


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Any]:
    driver = chromium(tmp_path, "zh-CN,zh")
    yield driver
    driver.quit()


@pytest.fixture
def english_browser(tmp_path: Path) -> Iterator[Any]:
    driver = chromium(tmp_path, "en-US,en")
    yield driver
    driver.quit()


@pytest.fixture
def screenshots(tmp_path: Path) -> Path:
    folder = README_SCREENSHOTS if os.environ.get("ADMIN_SCREENSHOTS") else tmp_path / "screenshots"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def log_in(browser: Any, console: str, user: User) -> None:
    from selenium.webdriver.common.by import By

    browser.get(f"{console}/admin/login/")
    browser.find_element(By.NAME, "username").send_keys(user.username)
    browser.find_element(By.NAME, "password").send_keys(PASSWORD)
    browser.find_element(By.CSS_SELECTOR, "input[type=submit]").click()
    browser.find_element(By.ID, "user-tools")


def messages_text(browser: Any) -> str:
    from selenium.webdriver.common.by import By

    return str(browser.find_element(By.CSS_SELECTOR, "ul.messagelist").text)


def served_images(settings: Any, base_url: str, task: Task) -> None:
    """Input and result files on the local media route, so the thumbnails show real pictures."""
    root = Path(settings.MEDIA_ROOT) / "admin-demo"
    root.mkdir(parents=True, exist_ok=True)
    names = {"input.png": "#c9c2b8", "white.png": "#ffffff", "clean.png": "#f4f4f4", "enhanced.png": "#fbfbfb"}
    for name, background in names.items():
        (root / name).write_bytes(product_photo(size=(480, 360), background=background))
    url = f"{base_url}/media/admin-demo/"
    Task.objects.filter(pk=task.pk).update(
        input_image_url=url + "input.png", result_urls=[url + name for name in list(names)[1:]]
    )


def test_the_console_is_styled_by_its_own_static_files(browser: Any, console: str) -> None:
    from selenium.webdriver.common.by import By

    log_in(browser, console, make_support(username="support-li"))
    stylesheets = [
        link.get_attribute("href") for link in browser.find_elements(By.CSS_SELECTOR, "link[rel=stylesheet]")
    ]
    assert stylesheets and all(re.search(r"/static/admin/css/\w+\.[0-9a-f]{12}\.css$", url) for url in stylesheets), (
        stylesheets
    )
    request = urllib.request.Request(stylesheets[0], headers={"Accept-Encoding": "gzip"})
    with urllib.request.build_opener(urllib.request.ProxyHandler({})).open(request) as answer:
        assert answer.status == 200
        assert answer.headers["Content-Encoding"] == "gzip", "compressed"
        assert "immutable" in answer.headers["Cache-Control"], "hashed names are cached for ever"
    header = browser.find_element(By.ID, "header")
    assert header.value_of_css_property("background-color") != "rgba(0, 0, 0, 0)", "the stylesheet applied"


def test_support_fails_and_refunds_stuck_tasks_and_stays_on_the_filter(
    browser: Any, console: str, settings: Any, screenshots: Path
) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    settings.PUBLIC_BASE_URL = console
    support = make_support(username="support-li")
    member = make_member(username="zhang.wei", phone="13800138000", quota=30)
    for _ in range(2):
        make_task(member, TaskStatus.FAILED, failure_code=FailureCode.PROCESSING_TIMEOUT)
    make_task(
        member,
        TaskStatus.FAILED,
        failure_code=FailureCode.PROVIDER_FAILED,
        reason="RunningHub 805: workflow node 74 raised an exception while loading the input image; " * 3,
    )
    make_task(member, TaskStatus.FAILED, failure_code=FailureCode.AUDIT_BLOCKED)
    pending = make_task(member, TaskStatus.PENDING, age=timedelta(minutes=20))
    served_images(settings, console, make_task(member, TaskStatus.SUCCESS))
    stuck = make_task(member, TaskStatus.PROCESSING, age=timedelta(hours=1), vendor_task_id="1990000000000000001")
    served_images(settings, console, stuck)
    Task.objects.filter(pk=stuck.pk).update(result_urls=[])

    log_in(browser, console, support)
    dashboard = browser.find_element(By.ID, "task-dashboard")
    assert "最近 24 小时任务" in dashboard.text and "处理超时" in dashboard.text
    browser.save_screenshot(str(screenshots / "admin-dashboard.png"))

    browser.get(f"{console}/admin/tasks/task/")
    table = browser.find_element(By.ID, "result_list")
    assert "zhang.wei" in table.text
    # At 1,440 px the whole table fits beside the filters: nothing scrolls sideways, and a long
    # provider message is cut short with the whole text as its tooltip.
    browser.save_screenshot(str(screenshots / "admin-task-list.png"))
    results = browser.find_element(By.CSS_SELECTOR, "#changelist .results")
    assert browser.execute_script("return arguments[0].scrollWidth <= arguments[0].clientWidth", results)
    error = browser.find_element(By.CSS_SELECTOR, "td.field-failure .task-error[title^='RunningHub 805']")
    assert error.rect["x"] + error.rect["width"] <= results.rect["x"] + results.rect["width"]
    assert error.text.endswith(("…", "...")) and len(error.text) < 80

    browser.get(f"{console}/admin/tasks/task/{stuck.pk}/change/")
    assert "状态历史" in browser.page_source
    browser.set_window_size(1440, 1500)
    browser.save_screenshot(str(screenshots / "admin-task-detail.png"))
    browser.set_window_size(1440, 1000)

    # From the stuck filter: select, choose the action, give a reason; back on the same filter.
    browser.get(f"{console}/admin/tasks/task/?stuck=yes")
    for checkbox in browser.find_elements(By.NAME, "_selected_action"):
        checkbox.click()
    Select(browser.find_element(By.NAME, "action")).select_by_value("fail_and_refund")
    browser.find_element(By.CSS_SELECTOR, "button[name=index]").click()
    browser.find_element(By.NAME, "reason").send_keys("RunningHub 长时间无响应,客服手动结束")
    browser.find_element(By.NAME, "apply").click()
    assert browser.current_url == f"{console}/admin/tasks/task/?stuck=yes"
    assert "已将 2 个任务标记为失败并退还配额" in messages_text(browser)
    browser.save_screenshot(str(screenshots / "admin-stuck-after-action.png"))

    for task in (stuck, pending):
        task.refresh_from_db()
        assert (task.status, task.error_message) == (TaskStatus.FAILED, "RunningHub 长时间无响应,客服手动结束")
        assert TaskEvent.objects.filter(task=task, to_status=TaskStatus.FAILED, actor=support).exists()
        assert QuotaLedger.objects.filter(task_id=task.pk, kind=LedgerKind.REFUND).count() == 1
    for name in ("admin-dashboard.png", "admin-task-list.png", "admin-task-detail.png", "admin-stuck-after-action.png"):
        assert (screenshots / name).stat().st_size > 10_000


def test_a_member_calls_about_a_failed_task(browser: Any, console: str, screenshots: Path) -> None:
    """Search by phone, then at most three clicks: the member, the failed task's "compensate", submit."""
    from selenium.webdriver.common.by import By

    support = make_support(username="support-li")
    member = make_member(username="zhang.wei", phone="13800138000", quota=30)
    make_task(member, TaskStatus.SUCCESS, task_type=TaskType.MODEL_POSE12)
    failed = make_task(
        member, TaskStatus.FAILED, task_type=TaskType.MODEL_POSE12, failure_code=FailureCode.PROCESSING_TIMEOUT
    )
    make_task(member, TaskStatus.PROCESSING)
    make_member(username="li.na", phone="13900139000")
    member.refresh_from_db()
    expiry, before = member.quota_expire_at, member.quota_remaining
    log_in(browser, console, support)

    browser.get(f"{console}/admin/accounts/user/")
    search = browser.find_element(By.ID, "searchbar")
    search.send_keys("13800138000")
    search.submit()
    clicks = 0

    browser.find_element(By.LINK_TEXT, "zhang.wei").click()
    clicks += 1
    tasks = browser.find_element(By.ID, "tasks-group")
    assert "处理超时" in tasks.text and "模特12宫格" in tasks.text
    ledger = browser.find_element(By.ID, "ledger-group").text
    assert "退还" in ledger and "+1" in ledger and "refund" not in ledger
    browser.set_window_size(1440, 1400)
    browser.save_screenshot(str(screenshots / "admin-member-hub.png"))
    browser.set_window_size(1440, 1000)

    tasks.find_element(By.CSS_SELECTOR, "a.compensate-task").click()
    clicks += 1
    assert browser.find_element(By.CSS_SELECTOR, "input[name=operation][value=compensate]").is_selected()
    assert browser.find_element(By.NAME, "task").get_attribute("value") == str(failed.pk)
    assert not browser.find_element(By.NAME, "days").is_enabled(), "the days apply to a grant only"
    browser.find_element(By.NAME, "amount").send_keys("2")
    browser.find_element(By.NAME, "reason").send_keys("模特12宫格处理超时,致歉补偿")
    browser.save_screenshot(str(screenshots / "admin-compensation-form.png"))
    browser.find_element(By.CSS_SELECTOR, "#quota-form input[type=submit]").click()
    clicks += 1

    assert clicks <= 3
    assert "补偿 +2 配额" in messages_text(browser)
    row = QuotaLedger.objects.get(user=member, kind=LedgerKind.COMPENSATE)
    assert (row.delta, row.task_id, row.actor, row.reason) == (2, failed.pk, support, "模特12宫格处理超时,致歉补偿")
    assert QuotaLedger.objects.filter(task_id=failed.pk, kind=LedgerKind.REFUND).count() == 1
    member.refresh_from_db()
    assert member.quota_expire_at == expiry and member.quota_remaining == before + 2
    for name in ("admin-member-hub.png", "admin-compensation-form.png"):
        assert (screenshots / name).stat().st_size > 10_000


def test_each_browser_sees_one_language(browser: Any, english_browser: Any, console: str) -> None:
    from selenium.webdriver.common.by import By

    support = make_support(username="1001")
    member = make_member(username="13800138000", phone="13800138000")
    make_task(member, TaskStatus.FAILED, failure_code=FailureCode.AUDIT_BLOCKED, reason="blocked")
    make_task(member, TaskStatus.PROCESSING, age=timedelta(hours=1))
    pages = ("/admin/", "/admin/tasks/task/", "/admin/tasks/task/?stuck=yes", "/admin/accounts/user/")

    log_in(english_browser, console, support)
    for page in pages:
        english_browser.get(console + page)
        text = english_browser.find_element(By.TAG_NAME, "body").text
        assert not CJK.findall(text), (page, sorted(set(CJK.findall(text))))
    assert "Support dashboard" in english_browser.title or "Support console" in english_browser.title

    log_in(browser, console, support)
    for page in pages:
        browser.get(console + page)
        text = browser.find_element(By.TAG_NAME, "body").text
        # Stored names are data, not labels: the provider's, the task's message, the group's.
        words = set(re.findall(r"(?<![0-9A-Za-z-])[A-Za-z]{3,}(?![0-9A-Za-z-])", text))
        words -= {"RunningHub", "blocked", "support"}
        assert not words, (page, words)
