"""singer-sdk's standard tap tests, against the bundled simulator (the `sandbox` setting)."""

from __future__ import annotations

from singer_sdk.testing import SuiteConfig, get_tap_test_class

from tap_comagic.tap import TapCoMagic

CONFIG = {"sandbox": True, "start_date": "2026-01-01", "end_date": "2026-01-04T23:59:59", "window_days": 2,
          "page_size": 200}


class EverythingSelected(TapCoMagic):
    """The suite compares each stream's records with a fresh tap's catalog, so every stream (also the
    deferred ones that are off by default: visitors, sales, api_requests) must be selected there too."""

    def discover_streams(self):  # type: ignore[no-untyped-def]
        streams = super().discover_streams()
        for stream in streams:
            stream.selected_by_default = True
        return streams


def test_deferred_reports_are_off_by_default():
    tap = TapCoMagic(config=CONFIG)
    off = sorted(name for name, s in tap.streams.items() if not s.selected)
    # ... and the summaries, whose requests grow with days and sites (README, Reference tables), the costs
    # of sources (one request per day) and the deals' stage history (one per window on its first run)
    assert off == ["api_requests", "campaign_daily_stat", "ct_ac_summary", "ct_summary", "deals_history",
                   "employee_stat", "sales", "source_costs", "visitors"]


TestTapCoMagic = get_tap_test_class(
    tap_class=EverythingSelected, config=CONFIG, suite_config=SuiteConfig(max_records_limit=100_000))
