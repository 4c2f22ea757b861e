"""The settings' limits are in the JSON Schema, where Meltano and the Hub show them."""

from tap_comagic.tap import TapCoMagic


def test_the_bounded_settings_declare_their_limits_in_the_schema() -> None:
    props = TapCoMagic.config_jsonschema["properties"]
    limits = {name: (props[name].get("minimum"), props[name].get("maximum"))
              for name in ("window_days", "page_size", "lookback_days", "max_parallel_requests", "max_retries",
                           "request_timeout", "retry_backoff_seconds")}
    assert limits == {"window_days": (1, 90), "page_size": (1, 10000), "lookback_days": (0, 3650),
                      "max_parallel_requests": (1, 16), "max_retries": (0, 100), "request_timeout": (1, 3600),
                      "retry_backoff_seconds": (0, 600)}
