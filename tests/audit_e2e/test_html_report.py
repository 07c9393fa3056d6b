"""The one-page HTML report opened in a real browser (Debian's Chromium, headless, driven by ChromeDriver through
Selenium), as an operator opens it from disk: it renders without a console error, lists the exposed rooms and every
finding, and asks nothing of the network (self-contained)."""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

from audit import finding_target

#: Chromium as this machine runs it: headless, no sandbox (root), and none of its own background connections (the
#: network is closed: they would fail and log), a fresh profile.
CHROMIUM_FLAGS = [
    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync", "--disable-extensions",
    "--disable-default-apps", "--window-size=1400,2000",
]

#: The page's text as rendered: scripts, styles and templates left out, so that ids sitting in an embedded JSON blob
#: do not count as listed.
RENDERED_TEXT = """
const body = document.body.cloneNode(true);
body.querySelectorAll('script, style, template, noscript').forEach(e => e.remove());
return body.textContent;
"""


def open_browser(chromium, profile):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    browser, driver = chromium
    options = webdriver.ChromeOptions()
    options.binary_location = browser
    for flag in CHROMIUM_FLAGS + [f"--user-data-dir={profile}"]:
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    return webdriver.Chrome(options=options, service=Service(driver))


def test_the_html_report_opens_in_chromium_lists_rooms_and_findings_and_asks_no_network(
    exposed_audit, world, chromium, tmp_path
):
    """file://report.html in headless Chromium: the page loads (a screenshot is kept, its path printed), no SEVERE
    console entry (no script error, no failed load), the rendered page names every exposed room and every finding
    (event id or mxc URI), and no request left the file: no resource entry in the page's performance timeline, no
    request in the browser's network log other than the file itself."""
    report = exposed_audit.html
    assert report.is_file() and report.stat().st_size > 0, exposed_audit.describe()
    driver = open_browser(chromium, tmp_path / "profile")
    try:
        url = report.resolve().as_uri()
        # Whatever the browser loaded for itself before (its start page) is not the report's doing.
        driver.get("about:blank")
        driver.get_log("performance")
        driver.get_log("browser")
        driver.get(url)
        deadline = time.monotonic() + 20
        while driver.execute_script("return document.readyState") != "complete":
            assert time.monotonic() < deadline, "the report did not finish loading within 20 s"
            time.sleep(0.1)
        time.sleep(0.5)  # let any script that renders after load run, and report its errors
        screenshot = tmp_path / "report.png"
        assert driver.save_screenshot(str(screenshot)), "no screenshot"
        artifacts = os.environ.get("ROOMGUARD_AUDIT_ARTIFACTS")
        if artifacts:  # run.sh keeps them past the test directories' removal
            Path(artifacts).mkdir(parents=True, exist_ok=True)
            screenshot = Path(shutil.copy(screenshot, Path(artifacts) / "report.png"))
            report = Path(shutil.copy(report, Path(artifacts) / "report.html"))
        print(f"\nHTML report screenshot: {screenshot}\nHTML report: {report}")

        console = driver.get_log("browser")
        severe = [entry for entry in console if entry["level"] == "SEVERE"]
        assert not severe, json.dumps(severe, indent=1)

        title = driver.title
        assert title.strip(), "the page has a title"
        text = driver.execute_script(RENDERED_TEXT)
        for room in world.exposed_rooms:
            assert room.room_id in text, f"room {room.key} ({room.room_id}) not on the page"
        for finding in exposed_audit.findings:
            assert finding_target(finding) in text, f"finding {finding_target(finding)} not on the page"

        resources = driver.execute_script(
            "return performance.getEntriesByType('resource').map(e => e.name)"
        )
        assert resources == [], f"the page loaded resources: {resources}"
        requests = []
        for entry in driver.get_log("performance"):
            message = json.loads(entry["message"])["message"]
            params = message.get("params", {})
            if message["method"] == "Network.webSocketCreated":
                requests.append(params.get("url", "a web socket"))
            elif message["method"] == "Network.requestWillBeSent" and params.get("documentURL") == url:
                target = params["request"]["url"]
                if target != url and not target.startswith(("data:", "blob:", "about:")):
                    requests.append(target)
        assert requests == [], f"the page asked the network: {requests}"
    finally:
        driver.quit()
