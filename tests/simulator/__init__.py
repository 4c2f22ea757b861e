"""The bundled simulator spoken to over HTTP, as a client would."""

# The size of the world the simulator's own tests count on: ten days (their RANGE), more than 200 calls (a
# page at the default limit), enough of every report for the caps and the v3 reports' pages.
TEN_DAYS = {"days": 10, "calls_per_day": 20, "chats_per_day": 6, "goals_per_day": 8, "offline_messages_per_day": 4,
            "visitor_sessions_per_day": 30, "api_requests_per_day": 5}
