"""The tap against the simulator: data, keys, requests, incremental runs, agencies, the SDK's own tests."""
