"""A support agent in a real (headless) Chromium: logs in, reads the dashboard and a task, fails and
refunds it. Saves the screenshots the README shows (docs/screenshots/)."""

import os
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from accounts.tests.factories import PASSWORD, make_member, make_support
from media.tests.images import product_photo
from quota.models import LedgerKind, QuotaLedger
from tasks.models import Task, TaskEvent, TaskStatus
from tasks.tests.factories import make_task

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
# Screenshots go to the README's folder only when asked (ADMIN_SCREENSHOTS=1), so an ordinary
# test run leaves the work tree clean.
README_SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"

pytestmark = [
    pytest.mark.skipif(not CHROMIUM.exists(), reason="Chromium is not installed (apt-get install chromium)"),
    pytest.mark.django_db(transaction=True),
    pytest.mark.slow,
]


@pytest.fixture
def browser(tmp_path: Path) -> Any:
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
        "--window-size=1440,1000",
        f"--user-data-dir={tmp_path / 'chromium-profile'}",
    ):
        options.add_argument(flag)
    # Headless Chromium sends Accept-Language from its preferences, not from --lang.
    options.add_experimental_option("prefs", {"intl.accept_languages": "zh-CN,zh"})
    driver = webdriver.Chrome(options=options, service=Service(executable_path=str(CHROMEDRIVER)))
    driver.implicitly_wait(5)
    yield driver
    driver.quit()


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


def test_support_fails_and_refunds_a_task_in_the_browser(
    browser: Any, live_server: Any, settings: Any, tmp_path: Path
) -> None:
    from selenium.webdriver.common.by import By

    SCREENSHOTS = README_SCREENSHOTS if os.environ.get("ADMIN_SCREENSHOTS") else tmp_path

    settings.PUBLIC_BASE_URL = live_server.url
    support = make_support(username="support-li")
    member = make_member(username="zhang.wei", phone="13800138000", quota=30)
    for _ in range(2):
        make_task(member, TaskStatus.FAILED, reason="处理超时")
    make_task(member, TaskStatus.FAILED, reason="内容审核未通过")
    make_task(member, TaskStatus.PENDING, age=timedelta(minutes=20))
    served_images(settings, live_server.url, make_task(member, TaskStatus.SUCCESS))
    stuck = make_task(member, TaskStatus.PROCESSING, age=timedelta(hours=1), vendor_task_id="1990000000000000001")
    served_images(settings, live_server.url, stuck)
    Task.objects.filter(pk=stuck.pk).update(result_urls=[])
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)

    browser.get(f"{live_server.url}/admin/login/")
    browser.find_element(By.NAME, "username").send_keys(support.username)
    browser.find_element(By.NAME, "password").send_keys(PASSWORD)
    browser.find_element(By.CSS_SELECTOR, "input[type=submit]").click()
    dashboard = browser.find_element(By.ID, "task-dashboard")
    assert "最近 24 小时任务" in dashboard.text and "处理超时" in dashboard.text
    browser.save_screenshot(str(SCREENSHOTS / "admin-dashboard.png"))

    browser.get(f"{live_server.url}/admin/tasks/task/")
    assert "zhang.wei" in browser.find_element(By.ID, "result_list").text
    browser.save_screenshot(str(SCREENSHOTS / "admin-task-list.png"))

    browser.get(f"{live_server.url}/admin/tasks/task/{stuck.pk}/change/")
    assert "状态历史" in browser.page_source
    browser.set_window_size(1440, 1500)
    browser.save_screenshot(str(SCREENSHOTS / "admin-task-detail.png"))
    browser.set_window_size(1440, 1000)

    browser.find_element(By.ID, "action-fail_and_refund").click()
    browser.find_element(By.NAME, "reason").send_keys("RunningHub 长时间无响应,客服手动结束")
    browser.find_element(By.NAME, "apply").click()
    assert "已将 1 个任务标记为失败并退还配额" in browser.find_element(By.CSS_SELECTOR, "ul.messagelist").text

    stuck.refresh_from_db()
    assert (stuck.status, stuck.error_message) == (TaskStatus.FAILED, "RunningHub 长时间无响应,客服手动结束")
    assert TaskEvent.objects.filter(task=stuck, to_status=TaskStatus.FAILED, actor=support).exists()
    assert QuotaLedger.objects.filter(task_id=stuck.pk, kind=LedgerKind.REFUND).count() == 1
    for name in ("admin-dashboard.png", "admin-task-list.png", "admin-task-detail.png"):
        assert (SCREENSHOTS / name).stat().st_size > 10_000
