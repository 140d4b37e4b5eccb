def pytest_terminal_summary(terminalreporter):
    """Say why the browser test was skipped, even without `-rs`."""
    for report in terminalreporter.stats.get("skipped", []):
        if "observe" in report.nodeid and "page_in_chromium" in report.nodeid:
            reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else report
            terminalreporter.write_line(f"SKIPPED {report.nodeid}: {reason}", yellow=True)
