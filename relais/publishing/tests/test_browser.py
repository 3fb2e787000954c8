"""In a real Chromium against `relais run`: an offer is composed, approved, scheduled, published
to the sandbox, then its simulated cascade and claims grow on the campaign page without reloading.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from relais.web.tests.test_browser import page, pytestmark, relais_server  # noqa: F401

DAY = timedelta(days=1)


def local(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M")


def test_an_offer_is_approved_scheduled_published_forwarded_and_claimed(page) -> None:  # noqa: F811
    from playwright.sync_api import expect

    page.goto("/accounts/login/")
    page.fill("#id_username", "demo")
    page.fill("#id_password", "relais-demo")
    page.click("form.login button[type=submit]")
    page.click("nav.main >> text=Publishing")
    page.click("nav.filters >> text=Offers")

    now = datetime.now(UTC)  # a day either side covers any workspace time zone
    page.fill("input[name=product]", "ThinkPad X1 (refurbished)")
    page.fill("input[name=price]", "549")
    page.fill("input[name=stock]", "5000")
    page.fill("input[name=starts_at]", local(now - DAY))
    page.fill("input[name=ends_at]", local(now + 2 * DAY))
    page.fill("input[name=shared_code]", "X1-SPRING")
    page.click("#offer-form button[type=submit]")
    expect(page.locator("h1")).to_contain_text("ThinkPad X1")

    # Everyone reached clicks and claims; the real cascades play 300 times faster.
    page.fill("input[name=click_rate]", "1")
    page.fill("input[name=claim_rate]", "1")
    page.fill("input[name=speed]", "300")
    page.click("text=Save")
    page.locator("#publish-offer-form input[name=account]").first.check()
    page.click("#publish-offer-form button[type=submit]")
    expect(page.locator(".pub-text, #draft-text")).to_be_visible()
    page.click("button[value=submit]")
    page.click("button[value=approve]")
    zone = page.locator("label[for=when]").inner_text().split("(")[-1].rstrip(")")
    soon = page.evaluate(
        "zone => new Date(Date.now() + 15000).toLocaleString('sv-SE', {timeZone: zone})", zone
    )
    page.fill("#when", soon.replace(" ", "T"))
    page.click("button[value=schedule]")
    expect(page.locator(".pub-targets .badge")).to_have_text("Scheduled")
    expect(page.locator(".pub-targets .badge")).to_have_text("Published", timeout=90_000)

    page.click("text=Campaign")
    claims = page.locator("#claims-total")
    page.wait_for_function(
        "() => document.querySelectorAll('svg.cascade circle').length > 3", timeout=90_000
    )
    page.wait_for_function(
        "() => Number(document.querySelector('#claims-total').textContent) > 0", timeout=90_000
    )
    first = int(claims.inner_text())
    page.wait_for_function(
        "n => Number(document.querySelector('#claims-total').textContent) > n",
        arg=first,
        timeout=120_000,
    )
    expect(page.locator(".pub-cascade .badge")).to_have_text("simulated")
    assert int(page.locator("#stock-left").inner_text()) < 5000
