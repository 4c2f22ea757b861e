"""The CoMagic client with a fake transport and no server: retries, sessions, limits, error mnemonics,
malformed answers and HTTP statuses."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest
import requests

from tap_comagic.api import CoMagicClient, Retries, answer_of
from tap_comagic.auth import RENEW_MARGIN_SECONDS, Credentials
from tap_comagic.errors import (
    CoMagicError,
    DailyLimitSpent,
    DropField,
    RetryAfter,
    SkipStream,
    SplitWindow,
    TapError,
)
from tap_comagic.limits import Throttle
from tests.unit.fake_api import URL, Clock, FakeAPI, Reply, error, ok


def client_for(fake: FakeAPI, *, credentials: Credentials | None = None, max_retries: int = 3,
               throttle: Throttle | None = None) -> CoMagicClient:
    session = requests.Session()
    session.mount("https://", fake)
    return CoMagicClient(URL, credentials or Credentials(access_token="key-1"), throttle=throttle,
                         retries=Retries(max_retries, 0.0), session=session, logger=logging.getLogger("test-api"))


def retries_logged(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING and ": retry " in r.getMessage()]


# ---- the envelope ------------------------------------------------------------------------------------------

def test_a_call_is_a_json_rpc_envelope_with_the_token_in_its_params() -> None:
    fake = FakeAPI([ok([{"id": 1}], total_items=1)])
    response = client_for(fake).call("get.sites", {"limit": 5})
    [body] = fake.bodies
    assert body["jsonrpc"] == "2.0"
    assert body["method"] == "get.sites"
    assert body["params"] == {"limit": 5, "access_token": "key-1"}
    assert answer_of(response).metadata == {"total_items": 1}


def test_each_request_logs_the_sdks_request_duration_metric(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="singer_sdk.metrics")
    client_for(FakeAPI([ok()])).call("get.sites", {}, stream="sites")
    [point] = [json.loads(r.getMessage().removeprefix("METRIC: ")) for r in caplog.records
               if "http_request_duration" in r.getMessage()]
    assert point["type"] == "timer"
    assert point["value"] >= 0
    assert point["tags"] == {"stream": "sites", "endpoint": "get.sites", "http_status_code": 200, "status": "succeeded"}


# ---- retries -----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("fault", [
    (500, b"<html>oops</html>"),
    (503, b""),
    (429, b"slow down"),
    (200, b'{"jsonrpc": "2.0", "result": {"da'),  # truncated JSON
    (200, b'{"jsonrpc": "2.0", "id": 1}'),  # neither result nor error
    error("internal_error"),
    requests.ConnectionError("reset by peer"),
    requests.ReadTimeout("read timed out"),
], ids=["500", "503", "429", "truncated", "empty", "internal_error", "connection", "timeout"])
def test_a_transient_failure_is_retried_with_one_warning(fault: Reply, caplog: pytest.LogCaptureFixture) -> None:
    fake = FakeAPI([fault, ok({"app_id": 7})])
    assert client_for(fake).result("get.account") == {"app_id": 7}
    assert fake.methods == ["get.account", "get.account"]
    [line] = retries_logged(caplog)
    assert line.startswith("get.account: retry 1 in ")


def test_retries_stop_after_max_retries_with_the_last_failure() -> None:
    fake = FakeAPI(lambda body: (502, b""))
    with pytest.raises(RetryAfter, match=r"get\.account: HTTP 502"):
        client_for(fake, max_retries=2).call("get.account", {})
    assert len(fake.bodies) == 3  # the first try and two retries


def test_back_off_waits_double_up_to_a_cap_unless_the_error_says_how_long() -> None:
    waits = Retries(5, 1.5).waits()
    assert next(waits) == 0.0  # primed, as backoff does
    assert [waits.send(RetryAfter("x")) for _ in range(3)] == [3.0, 6.0, 12.0]
    assert waits.send(RetryAfter("x", wait=0.0)) == 0.0
    long = Retries(30, 10).waits()
    next(long)
    assert [long.send(None) for _ in range(6)][-1] == 120.0


def test_jitter_keeps_half_to_all_of_a_wait() -> None:
    jittered = [Retries.jitter(10.0) for _ in range(200)]
    assert all(5.0 <= w <= 10.0 for w in jittered)
    assert max(jittered) - min(jittered) > 1.0  # not a constant


# ---- HTTP statuses and mnemonics ---------------------------------------------------------------------------

def test_a_4xx_without_a_json_rpc_error_is_a_wrong_address_and_not_retried() -> None:
    fake = FakeAPI([(404, b"<html>not found</html>")])
    with pytest.raises(TapError, match=r"HTTP 404 from https://api\.example\.test/v2\.0: check `api_url`"):
        client_for(fake).call("get.sites", {})
    assert len(fake.bodies) == 1


def test_a_4xx_with_a_json_rpc_error_acts_on_the_error() -> None:
    with pytest.raises(SkipStream, match="forbidden"):
        client_for(FakeAPI([error("forbidden", status=403)])).call("get.sites", {})


@pytest.mark.parametrize(("mnemonic", "raised"), [
    ("access_token_blocked", CoMagicError),
    ("method_not_found", SkipStream),
    ("date_interval_limit_reached", SplitWindow),
    ("some_mnemonic_nobody_knows", CoMagicError),
])
def test_an_error_the_table_does_not_retry_is_raised_after_one_request(mnemonic: str, raised: type[Exception]) -> None:
    fake = FakeAPI([error(mnemonic)])
    with pytest.raises(raised, match=mnemonic):
        client_for(fake).call("get.calls_report", {})
    assert len(fake.bodies) == 1


def test_a_refused_field_that_was_asked_for_can_be_dropped() -> None:
    fake = FakeAPI([error("unexpected_parameters", field="ymclid"), error("unexpected_parameters", field="other")])
    client = client_for(fake)
    with pytest.raises(DropField) as dropped:
        client.call("get.goals_report", {"fields": ["id", "ymclid"]}, fields=["id", "ymclid"])
    assert dropped.value.field == "ymclid"
    with pytest.raises(CoMagicError, match="field `other`"):  # not asked for: nothing to drop
        client.call("get.goals_report", {"fields": ["id"]}, fields=["id"])


def test_an_agents_table_is_read_page_by_page_dropping_a_refused_field(caplog: pytest.LogCaptureFixture) -> None:
    def api(body: dict[str, Any]) -> Reply:
        params = body["params"]
        if "name" in params.get("fields", []):
            return error("unexpected_parameters", field="name")
        rows = [{"id": i} for i in range(5)][params["offset"]:params["offset"] + params["limit"]]
        return ok(rows, total_items=5)

    fake = FakeAPI(api)
    assert client_for(fake).table("get.customers", ("id", "name"), 2) == [{"id": i} for i in range(5)]
    assert [b["params"]["offset"] for b in fake.bodies] == [0, 0, 2, 4]
    assert [r for r in caplog.records if "'name'" in r.getMessage()]


# ---- tokens and sessions -----------------------------------------------------------------------------------

def test_an_expired_api_key_fails_saying_so_without_a_retry() -> None:
    fake = FakeAPI([error("access_token_expired")])
    with pytest.raises(TapError, match="`access_token` has expired or is invalid"):
        client_for(fake).call("get.sites", {})
    assert len(fake.bodies) == 1


def session_api(clock: Clock, *, expire_after: float = 3600, expired: set[str] | None = None) -> FakeAPI:
    """login.user hands out session-1, session-2...; a call with a token in ``expired`` is refused."""
    issued: list[str] = []
    gone = expired if expired is not None else set()

    def api(body: dict[str, Any]) -> Reply:
        params = body["params"]
        if body["method"] == "login.user":
            if params != {"login": "analyst", "password": "pw-1"}:
                return error("auth_error")
            issued.append(f"session-{len(issued) + 1}")
            return ok({"access_token": issued[-1], "expire_at": clock.now + expire_after})
        if body["method"] == "logout.user":
            gone.add(params["access_token"])
            return ok(True)
        if params.get("access_token") in gone:
            gone.discard(params["access_token"])  # the next login gives a new one anyway
            return error("access_token_expired")
        return ok({"token": params.get("access_token")})

    return FakeAPI(api)


def session(clock: Clock, password: str = "pw-1") -> Credentials:
    return Credentials(login="analyst", password=password, clock=lambda: clock.now)


def test_a_session_logs_in_once_and_its_token_travels_with_every_call() -> None:
    clock = Clock()
    fake = session_api(clock)
    client = client_for(fake, credentials=session(clock))
    assert [client.result("get.sites")["token"] for _ in range(3)] == ["session-1"] * 3
    assert fake.methods == ["login.user", "get.sites", "get.sites", "get.sites"]


def test_a_session_is_renewed_before_it_expires() -> None:
    clock = Clock()
    fake = session_api(clock, expire_after=RENEW_MARGIN_SECONDS + 60)
    client = client_for(fake, credentials=session(clock))
    assert client.result("get.sites")["token"] == "session-1"
    clock.now += 59  # not yet within the renewal margin
    assert client.result("get.sites")["token"] == "session-1"
    clock.now += 2  # within it: renewed before the server would refuse it
    assert client.result("get.sites")["token"] == "session-2"
    assert fake.methods == ["login.user", "get.sites", "get.sites", "login.user", "get.sites"]


def test_a_session_the_server_expires_is_renewed_and_the_call_retried(caplog: pytest.LogCaptureFixture) -> None:
    clock = Clock()
    expired = {"session-1"}
    fake = session_api(clock, expired=expired)
    client = client_for(fake, credentials=session(clock))
    assert client.result("get.sites")["token"] == "session-2"
    assert fake.methods == ["login.user", "get.sites", "login.user", "get.sites"]
    assert len(retries_logged(caplog)) == 1


def test_a_wrong_password_fails_in_one_line_without_the_password() -> None:
    clock = Clock()
    fake = session_api(clock)
    with pytest.raises(TapError) as failed:
        client_for(fake, credentials=session(clock, password="wrong-pass-9")).call("get.sites", {})
    assert "login.user failed: auth_error" in str(failed.value)
    assert "`password`" in str(failed.value)
    assert "wrong-pass-9" not in str(failed.value)
    assert fake.methods == ["login.user"]  # a refused login is not retried


def test_a_login_refused_for_a_token_mnemonic_fails_without_renewing_or_retrying() -> None:
    fake = FakeAPI([error("access_token_invalid")])
    with pytest.raises(TapError, match=r"login\.user failed: access_token_invalid"):
        client_for(fake, credentials=session(Clock())).call("get.sites", {})
    assert fake.methods == ["login.user"]


def test_login_is_retried_like_any_call(caplog: pytest.LogCaptureFixture) -> None:
    clock = Clock()
    sessions = session_api(clock).script
    assert callable(sessions)
    replies: list[Reply] = [(500, b"")]
    fake = FakeAPI(lambda body: replies.pop() if replies and body["method"] == "login.user" else sessions(body))
    assert client_for(fake, credentials=session(clock)).result("get.sites")["token"] == "session-1"
    assert fake.methods == ["login.user", "login.user", "get.sites"]
    assert retries_logged(caplog)[0].startswith("login.user: retry 1")


def test_log_out_ends_the_session_once() -> None:
    clock = Clock()
    fake = session_api(clock)
    client = client_for(fake, credentials=session(clock))
    client.call("get.sites", {})
    client.log_out()
    client.log_out()  # nothing left to end
    assert fake.methods == ["login.user", "get.sites", "logout.user"]
    assert fake.bodies[-1]["params"] == {"access_token": "session-1"}


def test_log_out_without_a_session_sends_nothing() -> None:
    fake = FakeAPI([])
    client_for(fake).log_out()
    assert fake.bodies == []


# ---- limits ------------------------------------------------------------------------------------------------

def test_the_throttle_learns_the_limits_each_answer_reports() -> None:
    throttle = Throttle()
    client_for(FakeAPI([ok(limits={"minute_remaining": 7, "minute_reset": 30, "day_remaining": 900})]),
               throttle=throttle).call("get.sites", {})
    assert (throttle.minute_remaining, throttle.day_remaining) == (7, 900)


def test_limit_exceeded_waits_for_the_reset_on_the_throttles_clock_then_retries(
        caplog: pytest.LogCaptureFixture) -> None:
    clock = Clock()
    throttle = Throttle(sleep=clock.sleep, clock=lambda: clock.now)
    fake = FakeAPI([error("limit_exceeded", limits={"minute_remaining": 0, "minute_reset": 25}), ok()])
    client_for(fake, throttle=throttle).call("get.sites", {})
    assert clock.slept == [25.0]
    assert len(fake.bodies) == 2
    [line] = retries_logged(caplog)
    assert "in 25.0 s" in line


def test_a_spent_day_stops_before_any_request() -> None:
    throttle = Throttle()
    throttle.observe({"day_remaining": 0, "day_reset": 3600})
    fake = FakeAPI([])
    with pytest.raises(DailyLimitSpent):
        client_for(fake, throttle=throttle).call("get.sites", {})
    assert fake.bodies == []


def test_each_account_keeps_its_own_points_on_one_connection() -> None:
    fake = FakeAPI(lambda body: ok(limits={"minute_remaining": 5 if body["params"].get("user_id") else 50}))
    token, client_account = Throttle(), Throttle()
    base = client_for(fake, throttle=token)
    base.for_account(client_account).call("get.sites", {"user_id": 3})
    base.call("get.sites", {})
    assert (client_account.minute_remaining, token.minute_remaining) == (5, 50)
