"""The console in a real browser (Debian's chromium through its chromedriver, nothing
downloaded), served behind a reverse proxy under ``/gw/``: sign in, open a blocked record,
claim and approve, edit and approve, and reject held reviews; the app's poll and the webhook
receiver see each outcome; CSRF refusal; a reviewer cannot reach admin pages; sign-out.

Screenshots go to ``tmp/console-screens/`` (ignored by git) so a person can look.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import WebDriverWait

from tests.console.conftest import PrefixProxy
from tests.review.conftest import FALLBACK, Hook, ReviewGateway
from tests.review.test_queue import poll
from tests.support.clients import openai_client

CHROMIUM, DRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")
SCREENS = Path(__file__).resolve().parents[2] / "tmp" / "console-screens"

pytestmark = pytest.mark.skipif(
    not (CHROMIUM.exists() and DRIVER.exists()),
    reason="needs Debian's chromium and chromium-driver (apt-get install chromium chromium-driver)",
)


@pytest.fixture(scope="module")
def browser() -> Iterator[WebDriver]:
    profile = tempfile.mkdtemp(prefix="console-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run",
                 "--window-size=1400,1000", f"--user-data-dir={profile}"):  # fmt: skip
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    # The driver's path is given: Selenium Manager never runs, nothing is downloaded.
    driver = webdriver.Chrome(service=Service(executable_path=str(DRIVER)), options=options)
    driver.implicitly_wait(0)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture(scope="module")
def proxy(console_gw: ReviewGateway) -> Iterator[PrefixProxy]:
    p = PrefixProxy(console_gw.url)
    try:
        yield p
    finally:
        p.stop()


def shot(driver: WebDriver, name: str) -> None:
    SCREENS.mkdir(parents=True, exist_ok=True)
    driver.save_screenshot(str(SCREENS / f"{name}.png"))


def wait_for(driver: WebDriver, css: str) -> None:
    WebDriverWait(driver, 10).until(ec.presence_of_element_located((By.CSS_SELECTOR, css)))


def click(driver: WebDriver, css: str) -> None:
    """Click and wait until the page it leads to has replaced this one."""
    button = driver.find_element(By.CSS_SELECTOR, css)
    button.click()
    WebDriverWait(driver, 15).until(ec.staleness_of(button))


def held_request(gw: ReviewGateway, text: str) -> str:
    client = openai_client(base_url=f"{gw.url}/w/held/v1", api_key=gw.analyst, max_retries=0)
    raw = client.chat.completions.with_raw_response.create(
        model="gpt-test", messages=[{"role": "user", "content": text}]
    )
    assert raw.http_response.status_code == 202
    review_id: str = raw.headers["x-gateway-review-id"]
    return review_id


def decide_in_browser(
    driver: WebDriver, base: str, review_id: str, verdict: str, text: str = ""
) -> None:
    driver.get(f"{base}/review?id={review_id}")
    wait_for(driver, "form.claim button")
    click(driver, "form.claim button")
    wait_for(driver, f"form.{verdict} button")
    if verdict == "reject":
        driver.find_element(By.CSS_SELECTOR, "form.reject textarea").send_keys(text)
    if verdict == "edit":
        driver.find_element(By.CSS_SELECTOR, "form.edit textarea").send_keys(text)
    shot(driver, f"review-{verdict}")
    click(driver, f"form.{verdict} button")
    wait_for(driver, "table.facts")


def test_a_reviewer_works_the_queue_in_a_browser_behind_a_prefix(
    browser: WebDriver, proxy: PrefixProxy, console_gw: ReviewGateway, hook: Hook
) -> None:
    gw, driver = console_gw, browser
    base = f"{proxy.url}/console"
    approve = held_request(gw, "Refund order 7 and mail jane.roe@example.org")
    edit = held_request(gw, "Refund order 8 and mail john.roe@example.org")
    reject = held_request(gw, "Refund order 9 and mail jim.roe@example.org")

    # Sign in: the console's root sends the browser to the sign-in page, under the prefix.
    driver.get(f"{base}/")
    wait_for(driver, "input#credential")
    assert driver.current_url == f"{base}/login"
    shot(driver, "login")
    driver.find_element(By.ID, "credential").send_keys(gw.reviewer)
    click(driver, ".login button")
    wait_for(driver, "table.queue")
    assert driver.current_url == f"{base}/queue"
    assert approve in driver.page_source
    shot(driver, "queue")
    styles = driver.execute_script(
        "return getComputedStyle(document.querySelector('nav')).borderBottomStyle"
    )
    assert styles == "solid"  # the stylesheet loaded through the relative URL

    # The explorer, filtered to blocked requests; a blocked record with its chain status.
    driver.get(f"{base}/explorer?workflow=held&reason=boundary.blocked_entity")
    wait_for(driver, "table.records")
    shot(driver, "explorer")
    click(driver, "table.records tbody tr td a")
    wait_for(driver, "table.facts")
    assert "boundary.blocked_entity" in driver.page_source
    assert "intact" in driver.page_source
    assert "jane.roe@example.org" not in driver.page_source
    assert "boundary" in driver.find_element(By.CSS_SELECTOR, "table.steps").text
    shot(driver, "record")

    # CSRF: a form whose token was taken out is refused.
    driver.get(f"{base}/review?id={approve}")
    wait_for(driver, "form.claim button")
    driver.execute_script("document.querySelector('form.claim input[name=csrf]').remove()")
    click(driver, "form.claim button")
    wait_for(driver, "h1")
    assert driver.find_element(By.TAG_NAME, "h1").text == "Refused"
    logs = [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]
    assert [e for e in logs if "403" not in e["message"]] == []  # nothing but that refusal

    decide_in_browser(driver, base, approve, "approve")
    decide_in_browser(driver, base, edit, "edit", "Your refund is on its way.")
    decide_in_browser(driver, base, reject, "reject", "Refunds need a ticket.")
    assert [e for e in driver.get_log("browser") if e["level"] == "SEVERE"] == []

    # The app's poll sees each outcome, and so does the webhook receiver.
    outcomes = {rid: poll(gw, "held", rid).json() for rid in (approve, edit, reject)}
    assert outcomes[approve]["verdict"] == "approved"
    assert "<EMAIL_ADDRESS>" in outcomes[approve]["answer"]["choices"][0]["message"]["content"]
    assert (
        outcomes[edit]["answer"]["choices"][0]["message"]["content"] == "Your refund is on its way."
    )
    rejected = outcomes[reject]["answer"]["choices"][0]["message"]["content"]
    assert FALLBACK in rejected
    assert "Refunds need a ticket." in rejected
    hook.wait_for(len(hook.got) + 0)
    delivered = {b["id"]: b["verdict"] for b in hook.bodies()}
    for _ in range(50):
        if all(r in delivered for r in (approve, edit, reject)):
            break
        hook.wait_for(len(hook.got) + 1, timeout=0.2)
        delivered = {b["id"]: b["verdict"] for b in hook.bodies()}
    assert (delivered[approve], delivered[edit], delivered[reject]) == (
        "approved",
        "edited",
        "rejected",
    )

    # A reviewer cannot reach the admin and auditor pages.
    for closed in ("keys", "limits", "overview"):
        driver.get(f"{base}/{closed}")
        wait_for(driver, "h1")
        assert driver.find_element(By.TAG_NAME, "h1").text == "Not allowed", closed
        assert "Keys" not in driver.find_element(By.TAG_NAME, "nav").text
    shot(driver, "not-allowed")
    driver.get_log("browser")  # those pages' own 403s

    # Sign out: back to sign-in, and the queue is closed again.
    driver.get(f"{base}/queue")
    wait_for(driver, "nav form button")
    click(driver, "nav form button")
    wait_for(driver, "input#credential")
    driver.get(f"{base}/queue")
    wait_for(driver, "input#credential")
    assert driver.current_url == f"{base}/login"


def test_an_admin_sees_overview_and_policies(
    browser: WebDriver, proxy: PrefixProxy, console_gw: ReviewGateway
) -> None:
    driver, base = browser, f"{proxy.url}/console"
    driver.get_log("browser")  # what earlier tests left
    driver.get(f"{base}/login")
    wait_for(driver, "input#credential")
    driver.find_element(By.ID, "credential").send_keys(console_gw.admin)
    click(driver, ".login button")
    wait_for(driver, "nav")
    driver.get(f"{base}/overview")
    wait_for(driver, "table.overview")
    assert "held" in driver.page_source
    shot(driver, "overview")
    driver.get(f"{base}/policies")
    wait_for(driver, "table")
    assert "tooling" in driver.page_source
    shot(driver, "policies")
    driver.get(f"{base}/keys")
    wait_for(driver, "table.keys")
    assert "rita" in driver.page_source
    shot(driver, "keys")
    assert [e for e in driver.get_log("browser") if e["level"] == "SEVERE"] == []


def test_an_admin_pauses_a_workflow_and_resumes_it_in_a_browser(
    browser: WebDriver, proxy: PrefixProxy, console_gw: ReviewGateway
) -> None:
    driver, base = browser, f"{proxy.url}/console"
    driver.get(f"{base}/login")
    wait_for(driver, "input#credential")
    driver.find_element(By.ID, "credential").send_keys(console_gw.admin)
    click(driver, ".login button")
    wait_for(driver, "nav")
    driver.get(f"{base}/policies")
    click(driver, 'main a[href="rollout"]')
    wait_for(driver, "table.rollout")
    row = '//table[contains(@class,"rollout")]//tr[td[1][text()="limited"]]'
    driver.find_element(By.XPATH, f"{row}//input[@name='reason']").send_keys("load test at 14:00")
    click(driver, 'tr:has(input[value="limited"]) form.pause button')
    wait_for(driver, "form.resume")
    text = driver.find_element(By.XPATH, row).text
    assert "paused by root" in text and "load test at 14:00" in text
    shot(driver, "rollout-paused")
    with console_gw.client(console_gw.analyst) as c:
        answer = c.post("/w/limited/v1/chat/completions",
                        json={"model": "gpt-test", "messages": [{"role": "user", "content": "hi"}]})  # fmt: skip
    assert answer.status_code == 503 and answer.json()["error"]["code"] == "policy.paused"
    click(driver, 'tr:has(input[value="limited"]) form.resume button')
    wait_for(driver, "table.rollout")
    assert "paused by" not in driver.find_element(By.XPATH, row).text
    assert [e for e in driver.get_log("browser") if e["level"] == "SEVERE"] == []
