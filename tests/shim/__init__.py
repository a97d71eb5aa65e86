"""The browser shim's build and how it is served (its behaviour in a browser: tests/browser/)."""
