"""Playwright driving Debian's Chromium (never a downloaded browser) against pytest-django's live server."""

import time
from pathlib import Path

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
# A predicate for page.wait_for_function (arg: the example shown before). Functions, not expression strings: the
# site's Content-Security-Policy forbids eval, which Playwright uses for expression strings.
PANEL_CHANGED = "(before) => document.querySelector('[data-review-panel]').dataset.example != before"
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"


def log_in(context, base_url: str, username: str, password: str):
    page = context.new_page()
    page.goto(f"{base_url}/login/")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    page.keyboard.press("Enter")
    page.wait_for_url(f"{base_url}/")
    return page


def newcomer_loop(context, base_url: str, screenshot: str = "newcomer-verdict.png") -> tuple[float, float]:
    """The newcomer's clicks after `make run`: log in as the demo's lead, freeze a version, train tiny-local with the
    default preset, evaluate the run, wait for the verdict (screenshot in test-artifacts/). Returns the seconds from
    login to a trained run and to the verdict."""
    started = time.monotonic()
    page = log_in(context, base_url, "lena", "fineline-demo")
    page.click("text=Support triage")
    page.click("form.freeze button")
    page.wait_for_selector("text=Version 1 frozen")
    page.click("[data-train]")
    page.wait_for_selector("[data-launch-form]")
    assert page.input_value("select[name=preset]") == "tiny-local-demo"
    page.fill("textarea[name=override_readiness]", "Trying the demo end to end.")
    page.click("[data-launch]")
    page.wait_for_selector("[data-run-live]")
    page.wait_for_selector("[data-run-live][data-status=succeeded]", timeout=900_000)
    trained = time.monotonic() - started
    page.click("[data-evaluate-run]")
    page.click("[data-evaluate]")
    page.wait_for_selector("[data-verdict]", timeout=300_000)
    total = time.monotonic() - started
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / screenshot))
    return trained, total
