"""The operator's pages in the real Airflow UI, in headless Chromium: log in through the UI's
form (simple auth manager, user admin), open the data-quality view from the nav and read a bad
day's quarantine count, follow it to the Data Docs page of a validation three runs back, and
open the dbt docs. A screenshot of each lands in data/test-artifacts/.

Chromium and its driver come from Debian (`apt-get install chromium chromium-driver`; .ci/run
installs them); Selenium is told both paths, so it never looks for or downloads a driver.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.ingestion.warehouse import query
from tests.region import Region
from tests.ui import quality_region
from tests.ui.quality_region import LOADED_DAYS, RUNS
from yilian.settings import PROJECT_ROOT, paths

pytestmark = pytest.mark.e2e
ARTIFACTS = PROJECT_ROOT / "data" / "test-artifacts"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
WAIT = 60


@pytest.fixture(scope="module")
def airflow_ui(module_region: Region, airflow_db) -> Iterator[object]:
    """A data dir with five validations and the dbt docs, and the api-server (only) on it."""
    from yilian.dev.airflow_services import running
    from yilian.warehouse.dbt import run_dbt

    if not (os.access(CHROMIUM, os.X_OK) and os.access(CHROMEDRIVER, os.X_OK)):
        pytest.fail("needs Debian's chromium and chromium-driver (apt-get install both)")
    started = time.monotonic()
    quality_region.load(module_region)
    run_dbt(["docs", "generate", "--static"], target_path=paths().reports_dir / "dbt_docs")
    (paths().reports_dir / "run_report.html").write_text(
        "<!doctype html><title>Run report</title><h1>stand-in run report</h1>", encoding="utf-8"
    )
    print(f"data set up in {time.monotonic() - started:.0f}s")
    with running(module_region.root / "airflow-logs", components=("api-server",)) as airflow:
        yield airflow


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    os.environ["SE_OFFLINE"] = "true"  # Selenium Manager: never reach the network
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage"):
        options.add_argument(arg)
    options.add_argument("--window-size=1400,1000")
    driver = webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))
    driver.implicitly_wait(0)
    try:
        yield driver
    finally:
        driver.quit()


def _shot(driver, name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"operator-ui-{name}.png"
    driver.save_screenshot(str(path))
    return path


def _open_from_nav(driver, wait, page: str) -> None:
    """Plugins ▸ Yilian ▸ `page` in the UI's navigation, then into the page's frame."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec

    driver.switch_to.default_content()
    wait.until(ec.element_to_be_clickable((By.XPATH, "//button[normalize-space()='Plugins']")))
    driver.find_element(By.XPATH, "//button[normalize-space()='Plugins']").click()
    wait.until(
        ec.element_to_be_clickable((By.XPATH, "//*[@role='menuitem'][normalize-space()='Yilian']"))
    ).click()
    wait.until(
        ec.element_to_be_clickable((By.XPATH, f"//a[@role='menuitem'][normalize-space()='{page}']"))
    ).click()
    wait.until(ec.frame_to_be_available_and_switch_to_it((By.TAG_NAME, "iframe")))


def test_operator_pages_in_the_airflow_ui(airflow_ui, browser) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    wait = WebDriverWait(browser, WAIT)
    home = Path(os.environ["AIRFLOW_HOME"])
    password = json.loads(
        (home / "simple_auth_manager_passwords.json.generated").read_text(encoding="utf-8")
    )["admin"]

    # the plugin's pages need Airflow's login: a browser that has none is sent to its form
    browser.get(f"{airflow_ui.base_url}/yilian/quality")
    wait.until(lambda d: "/auth/login" in d.current_url)
    assert "next=%2Fyilian%2Fquality" in browser.current_url
    browser.get(f"{airflow_ui.base_url}/")
    wait.until(ec.presence_of_element_located((By.NAME, "username"))).send_keys("admin")
    browser.find_element(By.NAME, "password").send_keys(password)
    browser.find_element(By.CSS_SELECTOR, "button[type=submit]").click()

    # data quality: the quarantine count of a day with bad rows, as the warehouse has it
    bad_day = LOADED_DAYS[0]
    expected = query(
        "select count(*) n from quarantine.rejected_rows where source = 'hospital' and ds = ?",
        [bad_day],
    ).n[0]
    assert expected > 0
    _open_from_nav(browser, wait, "Data quality")
    cell = wait.until(
        ec.presence_of_element_located(
            (By.CSS_SELECTOR, f'tr[data-source="hospital"][data-ds="{bad_day}"] td.quarantined')
        )
    )
    assert int(cell.text) == expected
    assert "resident_id" in browser.find_element(By.TAG_NAME, "body").text
    _shot(browser, "1-data-quality")

    # the Data Docs page of the validation three runs back, from its row's link
    three_back = RUNS[-4]
    row = browser.find_element(By.CSS_SELECTOR, f'tr[data-ds="{three_back}"]')
    row.find_element(By.LINK_TEXT, "encounters").click()
    wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, "table, .card")))
    wait.until(lambda d: d.execute_script("return !!(window.jQuery && jQuery.fn.bootstrapTable)"))
    assert quality_region.run_id(three_back) in browser.page_source
    assert browser.execute_script(
        "return [...document.styleSheets].every(s => !s.href || s.href.startsWith(location.origin))"
    )
    _shot(browser, "2-data-docs-three-runs-back")

    # the GX Data Docs index lists every validation kept
    _open_from_nav(browser, wait, "GX Data Docs")
    wait.until(lambda d: quality_region.run_id(RUNS[0]) in d.page_source)
    assert all(quality_region.run_id(ds) in browser.page_source for ds in RUNS)

    # dbt docs: the static site, offline
    _open_from_nav(browser, wait, "dbt docs")
    try:
        wait.until(
            lambda d: "auto-generated documentation" in d.find_element(By.TAG_NAME, "body").text
        )
        wait.until(
            # the project's folder under "Projects" (the metrics have a "yilian" folder too)
            ec.element_to_be_clickable(
                (
                    By.XPATH,
                    "//*[normalize-space()='Projects']/following::a[normalize-space()='yilian']",
                )
            )
        ).click()
        wait.until(lambda d: "seeds" in d.find_element(By.TAG_NAME, "body").text)
    finally:
        _shot(browser, "3-dbt-docs")

    # the run report, as the main job wrote it (here a stand-in: the page serves the file)
    _open_from_nav(browser, wait, "Run report")
    wait.until(lambda d: "stand-in run report" in d.find_element(By.TAG_NAME, "body").text)
