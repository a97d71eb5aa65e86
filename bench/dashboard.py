"""Dashboard first-render benchmark: /dashboard against a center made by bench/center.py, in headless Chromium.

Starts `calltrail serve` (1 worker) on the database, creates a read key, and opens the overview for the last 30
days of the center (by day and by hour, Asia/Shanghai) in a fresh browser profile each run (empty cache: a
first visit). First render is the time from navigation start to every headline figure and all three charts
drawn, as the page itself measures it (`performance.now()` when the view is ready, body[data-ready-ms]). One
cold run first, then ``--runs`` timed runs; prints the median and the worst.

    .venv/bin/python bench/center.py --url sqlite:////tmp/center.db
    .venv/bin/python bench/dashboard.py --url sqlite:////tmp/center.db
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
from urllib.parse import urlencode

from playwright.sync_api import Browser, sync_playwright
from served import served  # bench/served.py: scripts here run as `python bench/<name>.py`

# The last 30 days of bench/center.py's history, which ends 2026-11-01 00:00 in Asia/Shanghai.
VIEW = {
    "view": "overview",
    "preset": "custom",
    "from": "2026-10-02",
    "to": "2026-10-31",
    "tz": "Asia/Shanghai",
}
CASES = [("overview, 30 days by day", {**VIEW, "interval": "day"}), ("overview, 30 days by hour", {**VIEW, "interval": "hour"})]  # fmt: skip


def first_render_ms(browser: Browser, url: str, key: str) -> float:
    context = browser.new_context(viewport={"width": 1366, "height": 768})
    try:
        # The key as a returning user has it: already in the browser's storage.
        context.add_init_script(f"window.localStorage.setItem('calltrail.readKey', {key!r})")
        page = context.new_page()
        page.goto(url)
        page.wait_for_selector("body[data-ready='true']", timeout=60_000)
        assert (
            page.locator(".plot canvas").count() == 3 and page.locator("#figures [data-figure]").count() == 7
        )
        assert not page.is_visible("#message"), page.inner_text("#message")
        return float(page.get_attribute("body", "data-ready-ms") or "nan")
    finally:
        context.close()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--url", required=True)
    parser.add_argument("--runs", type=int, default=10)
    args = parser.parse_args()
    chromium = shutil.which("chromium")
    if chromium is None:
        sys.exit("chromium is not installed (scripts/ensure-chromium installs it)")
    with served(args.url, "bench-dashboard") as (base, key):
        print(f"$ .venv/bin/python bench/dashboard.py --url {args.url} --runs {args.runs}")
        print(f"{'case':30} {'cold ms':>8} {'median ms':>10} {'max ms':>8}")
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path=chromium,
                args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
            )
            try:
                for name, params in CASES:
                    url = f"{base}/dashboard?{urlencode(params)}"
                    cold = first_render_ms(browser, url, key)
                    times = [first_render_ms(browser, url, key) for _ in range(args.runs)]
                    print(f"{name:30} {cold:8.0f} {statistics.median(times):10.0f} {max(times):8.0f}")
            finally:
                browser.close()


if __name__ == "__main__":
    main()
