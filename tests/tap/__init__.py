"""The tap run as a subprocess against the simulator: data, keys, requests, incremental runs."""
