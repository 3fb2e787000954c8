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


def test_a_post_is_moved_on_the_week_view_by_dragging_and_by_keyboard(page) -> None:  # noqa: F811
    from playwright.sync_api import expect

    page.goto("/accounts/login/")
    page.fill("#id_username", "demo")
    page.fill("#id_password", "relais-demo")
    page.click("form.login button[type=submit]")
    page.click("nav.main >> text=Publishing")
    page.fill("#composer-text", "Week view test post")
    page.locator("#composer input[name=account]").first.check()
    page.click("#composer button[type=submit]")
    page.click("button[value=submit]")
    page.click("button[value=approve]")
    zone = page.locator("label[for=when]").inner_text().split("(")[-1].rstrip(")")
    # Next week's Monday, 10:15 in the workspace's time zone: the whole week is in the future.
    monday = page.evaluate(
        """zone => {
            const today = new Date(new Date().toLocaleString('en-US', {timeZone: zone}));
            today.setDate(today.getDate() + 7 - ((today.getDay() + 6) % 7));
            return today.toLocaleDateString('sv-SE');
        }""",
        zone,
    )
    page.fill("#when", f"{monday}T10:15")
    page.click("button[value=schedule]")
    expect(page.locator(".pub-targets .badge")).to_have_text("Scheduled")

    page.goto(page.url.split("/draft/")[0] + f"/calendar/?week={monday}")
    entry = page.locator("a.pub-entry[draggable=true]", has_text="Week view test post")
    expect(entry).to_have_count(1)
    wednesday_at_14 = page.locator(f"td[data-hour='14'][data-day='{_plus(monday, 2)}']")
    # The drag as the browser reports it to the page: dragstart on the post, drop on the cell.
    dragged = page.evaluate_handle("() => new DataTransfer()")
    entry.dispatch_event("dragstart", {"dataTransfer": dragged})
    wednesday_at_14.dispatch_event("dragover", {"dataTransfer": dragged})
    wednesday_at_14.dispatch_event("drop", {"dataTransfer": dragged})
    moved = wednesday_at_14.locator("a.pub-entry", has_text="Week view test post")
    expect(moved).to_contain_text("14:15")

    moved.focus()
    page.keyboard.press("ArrowRight")  # a day later, same hour
    thursday_at_14 = page.locator(f"td[data-hour='14'][data-day='{_plus(monday, 3)}']")
    expect(thursday_at_14.locator("a.pub-entry", has_text="Week view test post")).to_be_visible()
    thursday = thursday_at_14.locator("a.pub-entry", has_text="Week view test post")
    thursday.focus()
    page.keyboard.press("ArrowDown")  # an hour later
    expect(
        page.locator(f"td[data-hour='15'][data-day='{_plus(monday, 3)}'] a.pub-entry")
    ).to_contain_text("15:15")


def _plus(day: str, days: int) -> str:
    from datetime import date

    return (date.fromisoformat(day) + timedelta(days=days)).isoformat()
