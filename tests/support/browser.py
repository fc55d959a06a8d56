"""Real Chromium pages that survive a dropped fetch of a script.

Streamlit's page loads each widget's script the first time a widget of that kind shows
(`/static/js/Selectbox.<hash>.js`). On a loaded machine such a fetch has failed at the
transport (the page then shows "Failed to fetch dynamically imported module" in place
of the widget, and never asks again), with the server answering every other request.
The scripts are the server's own files, fetched again up to three times by the test's
side: what the page shows is still what the real server sent.
"""

from __future__ import annotations

from playwright.sync_api import BrowserContext, Error, Route

ATTEMPTS = 3


def _fetch_again_on_failure(route: Route) -> None:
    for attempt in range(1, ATTEMPTS + 1):
        try:
            route.fulfill(response=route.fetch(timeout=60_000))
            return
        except Error as error:
            print(f"fetch {attempt} of {route.request.url} failed: {error}")
    route.abort()


def retry_script_fetches(context: BrowserContext) -> None:
    """Fetch the page's scripts again when the transport drops one."""
    context.route("**/static/js/*.js", _fetch_again_on_failure)
