"""The page-test harness itself: Debian's Chromium starts headless and runs a page's script."""

from __future__ import annotations

from testkit.browser import has_horizontal_overflow, page_errors


def test_chromium_renders_a_page_and_runs_its_keyboard_handler(browser):
    page = browser.new_page(viewport={"width": 800, "height": 600})
    errors = page_errors(page)
    page.set_content("<p id=k></p><div id=wide style='width:1000px'>x</div>"
                     "<script>addEventListener('keydown', e => k.textContent += e.key)</script>")
    page.keyboard.press("b")
    page.keyboard.press("m")
    assert page.text_content("#k") == "bm"
    assert has_horizontal_overflow(page) is True  # the check can fail: a 1000 px block overflows 800 px
    page.evaluate("wide.remove()")
    assert has_horizontal_overflow(page) is False
    assert errors == []
    page.close()
