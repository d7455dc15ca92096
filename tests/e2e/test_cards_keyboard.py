"""Saved cards with the keyboard only (Tab, Shift+Tab, Enter, Space, arrows, Escape; no mouse), and the
three-dot menu as screen readers see it (a menu button, a menu, menu items)."""
from __future__ import annotations

from playwright.sync_api import expect

from ..helpers import add_card
from .test_cards_sandbox import (EXPIRY, card, card_menu, charged_to, customer, default_badge,  # noqa: F401
                                 gateway, menu_button, saved_cards, settled, sign_in, subscribed, toast)


def is_focused(locator) -> bool:
    return locator.evaluate("element => element === document.activeElement")


def tab_to(page, locator, *, backwards=False, limit=40):
    """Press Tab (or Shift+Tab) until the element has the focus, as a keyboard user walks the page."""
    expect(locator).to_be_visible()
    for _ in range(limit):
        if is_focused(locator):
            return
        page.keyboard.press("Shift+Tab" if backwards else "Tab")
    raise AssertionError(f"{locator} could not be reached with {'Shift+Tab' if backwards else 'Tab'}")


def test_adding_a_card_setting_it_default_and_deleting_another_with_the_keyboard(page, session, gateway, live_server,
                                                                                  subscribed):
    add_card(session, gateway, subscribed, number="4000056655665556")
    sign_in(page, live_server)
    keyboard = page.keyboard

    # Add a card: every field in order, Space on the checkbox, Confirm with Enter.
    tab_to(page, page.get_by_role("link", name="Add payment method"))
    keyboard.press("Enter")
    form = page.get_by_role("form", name="Add a new card")
    expect(form).to_be_visible()
    settled(page)
    expect(form.get_by_label("Cardholder name")).to_be_focused()
    keyboard.type("Ada Lovelace")
    keyboard.press("Tab")
    expect(form.get_by_label("Card number")).to_be_focused()
    keyboard.type("4242 4242 4242 4242")
    keyboard.press("Tab")
    expect(form.get_by_label(EXPIRY)).to_be_focused()
    keyboard.type("12 / 30")
    keyboard.press("Tab")
    expect(form.get_by_label("Security code")).to_be_focused()
    keyboard.type("123")
    keyboard.press("Tab")
    checkbox = form.get_by_label("Save as default card")
    expect(checkbox).to_be_focused()
    keyboard.press(" ")
    expect(checkbox).to_be_checked()
    keyboard.press(" ")  # changed my mind: the menu will make it the default below
    expect(checkbox).not_to_be_checked()
    keyboard.press("Tab")
    expect(form.get_by_role("button", name="Confirm")).to_be_focused()
    keyboard.press("Enter")
    expect(toast(page)).to_have_text("Visa •••• 4242 was added.")
    expect(saved_cards(page)).to_have_count(3)

    # Set it as default: Enter on the menu button opens the menu on its first item.
    button = menu_button(page, "Visa", "4242")
    tab_to(page, button, backwards=True)
    keyboard.press("Enter")
    expect(card_menu(page, "Visa", "4242").get_by_role("menuitem", name="Save as default card")).to_be_focused()
    keyboard.press("Enter")
    expect(toast(page)).to_have_text("Visa •••• 4242 is now your default card.")
    expect(default_badge(page, "4242")).to_have_text("Default")
    expect(default_badge(page, "4444")).to_have_count(0)
    expect(charged_to(page)).to_have_text("Visa •••• 4242")

    # Delete another card: arrows to Delete, Enter, then Enter on the confirmation's focused button.
    button = menu_button(page, "Visa", "5556")
    tab_to(page, button)
    keyboard.press("ArrowDown")
    menu = card_menu(page, "Visa", "5556")
    expect(menu.get_by_role("menuitem", name="Save as default card")).to_be_focused()
    keyboard.press("ArrowDown")
    expect(menu.get_by_role("menuitem", name="Set as backup")).to_be_focused()
    keyboard.press("ArrowDown")
    keyboard.press("ArrowDown")
    expect(menu.get_by_role("menuitem", name="Delete")).to_be_focused()
    keyboard.press("Enter")
    confirm = page.get_by_role("alertdialog", name="Delete Visa •••• 5556? This can't be undone.")
    expect(confirm.get_by_role("button", name="Delete card")).to_be_focused()
    keyboard.press("Enter")

    expect(toast(page)).to_have_text("Visa •••• 5556 was deleted.")
    expect(card(page, "5556")).to_have_count(0)
    expect(saved_cards(page)).to_have_count(2)


def test_the_card_menu_is_a_menu_button_for_screen_readers_and_escape_returns_focus(page, live_server, subscribed):
    sign_in(page, live_server)
    button = menu_button(page, "Mastercard", "4444")
    menu = card_menu(page, "Mastercard", "4444")
    items = menu.get_by_role("menuitem")

    expect(button).to_have_attribute("aria-haspopup", "menu")
    expect(button).to_have_attribute("aria-expanded", "false")
    expect(menu).to_be_hidden()

    tab_to(page, button)
    page.keyboard.press(" ")
    expect(button).to_have_attribute("aria-expanded", "true")
    expect(menu).to_be_visible()
    expect(button).to_have_attribute("aria-controls", menu.evaluate("element => element.id"))
    # The default card has nothing to set: Edit and Delete only.
    expect(items).to_have_text(["Edit", "Delete"])
    expect(items.first).to_be_focused()

    page.keyboard.press("ArrowDown")
    expect(items.last).to_be_focused()
    page.keyboard.press("ArrowDown")  # wraps round
    expect(items.first).to_be_focused()
    page.keyboard.press("ArrowUp")
    expect(items.last).to_be_focused()
    page.keyboard.press("Home")
    expect(items.first).to_be_focused()

    page.keyboard.press("Escape")
    expect(menu).to_be_hidden()
    expect(button).to_have_attribute("aria-expanded", "false")
    expect(button).to_be_focused()

    # ArrowUp opens on the last item; Tab closes the menu and moves on.
    page.keyboard.press("ArrowUp")
    expect(items.last).to_be_focused()
    expect(button).to_have_attribute("aria-expanded", "true")
    page.keyboard.press("Tab")
    expect(menu).to_be_hidden()
    expect(button).to_have_attribute("aria-expanded", "false")

    # Enter opens it as well; Shift+Tab closes it like Tab does.
    tab_to(page, button, backwards=True)
    page.keyboard.press("Enter")
    expect(items.first).to_be_focused()
    page.keyboard.press("Escape")
    expect(button).to_be_focused()
    page.keyboard.press("Enter")
    expect(menu).to_be_visible()
    page.keyboard.press("Shift+Tab")
    expect(menu).to_be_hidden()
