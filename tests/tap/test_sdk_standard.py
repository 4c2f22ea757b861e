"""singer-sdk's standard tap tests, against the bundled simulator (the `sandbox` setting)."""

from __future__ import annotations

from singer_sdk.testing import SuiteConfig, get_tap_test_class

from tap_comagic.tap import TapCoMagic

CONFIG = {"sandbox": True, "start_date": "2026-01-01", "end_date": "2026-01-04T23:59:59", "window_days": 2,
          "page_size": 200}


class EverythingSelected(TapCoMagic):
    """The suite compares each stream's records with a fresh tap's catalog, so every stream (also those
    off by default) must be selected there too."""

    def discover_streams(self):  # type: ignore[no-untyped-def]
        streams = super().discover_streams()
        for stream in streams:
            stream.selected_by_default = True
        return streams


TestTapCoMagic = get_tap_test_class(
    tap_class=EverythingSelected, config=CONFIG, suite_config=SuiteConfig(max_records_limit=100_000))
