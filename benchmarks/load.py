"""The load generator: simulated candidates, run in a process of their own.

``run_rush`` plays the registration rush (one journey per candidate, ``concurrency`` at a
time) and ``run_overview`` hammers the overview read for a fixed time; both return latency
lists per operation and the CPU time this process used, so the report can show how much of the
machine the load generator itself took. The same journey code drives both targets through a
small driver per target: :class:`GraphQLDriver` speaks GraphQL to ``/graphql``,
:class:`BareDriver` speaks the bare reference's JSON endpoints.
"""

from __future__ import annotations

import asyncio
import random
import re
import resource
import time
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from benchmarks.httpclient import Connection, HttpError, Response

SESSION_CODE = "2026H1"

SIGN_IN = """mutation SignIn($input: SignInInput!) {
  signIn(input: $input) { token account { id name mustChangePassword }
    userErrors { field code message } }
}"""
AVAILABLE_SUBJECTS = """query AvailableSubjects($sessionCode: String!) {
  availableSubjects(sessionCode: $sessionCode) {
    subject { code name kind slot } eligible reasons fee { yuan } }
}"""
ORAL_CENTERS = """query OralCenters($sessionCode: String!, $subjectCode: String!) {
  oralCenters(sessionCode: $sessionCode, subjectCode: $subjectCode) {
    id name address remainingSeats }
}"""
SELECT_SUBJECTS = """mutation SelectSubjects($input: SelectSubjectsInput!) {
  selectSubjects(input: $input) {
    orders { id number kind status amount { yuan } expiresAt
      registrations { subject { code } status } }
    userErrors { field code message } }
}"""
START_PAYMENT = """mutation StartPayment($input: StartPaymentInput!) {
  startPayment(input: $input) {
    payment { id outTradeNo status amount { yuan }
      redirect { method url fields { name value } } }
    userErrors { field code message } }
}"""
ORDER_STATUS = """query OrderStatus($id: ID!) { node(id: $id) { ... on Order { status } } }"""
MY_TICKETS = """query MyTickets($sessionCode: String) {
  viewer { tickets(sessionCode: $sessionCode) { id number subject { code } } }
}"""
MY_REGISTRATIONS = """query MyRegistrations($sessionCode: String) {
  viewer { registrations(sessionCode: $sessionCode) { id subject { code } status } }
}"""

# The candidate's overview (registrations, orders with payments, tickets): what
# benchmarks/overview.py measures and tests/test_query_counts.py counts the statements of.
OVERVIEW = """query Overview {
  viewer {
    registrations {
      id status expiresAt
      subject { code name kind }
      oralCenter { name }
      order { number }
    }
    orders(first: 10) {
      edges { node {
        id number kind status amount { fen yuan } createdAt expiresAt paidAt
        payments { id provider outTradeNo status amount { yuan } paidAt refundReason }
      } }
    }
    TICKETS
  }
}"""
OVERVIEW_TICKETS = """tickets {
      id number subject { code name } examStart examEnd centerName room seat
      printableFrom printableUntil
    }"""


def overview_query(tickets: bool) -> str:
    """The overview, with its tickets part when the schema has ``Account.tickets``."""
    return OVERVIEW.replace("TICKETS", OVERVIEW_TICKETS if tickets else "")


_PAY_ACTION = re.compile(r'action="([^"]*/pay)"')


class JourneyError(Exception):
    """A step did not give what the next step needs."""


# --- drivers -------------------------------------------------------------------------------


class GraphQLDriver:
    """The journey's steps as a partner front end sends them to cetgql."""

    def __init__(self, http: Connection, *, tickets: bool) -> None:
        self.http = http
        self.tickets_field = tickets
        self.token = ""

    async def _gql(self, query: str, variables: dict[str, Any]) -> Any:
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        response = await self.http.post_json(
            "/graphql", {"query": query, "variables": variables}, headers=headers
        )
        if response.status != 200:
            raise JourneyError(f"HTTP {response.status}: {response.text[:300]}")
        result = response.json()
        if result.get("errors"):
            raise JourneyError(str(result["errors"])[:300])
        return result["data"]

    @staticmethod
    def _payload(data: dict[str, Any], name: str) -> dict[str, Any]:
        payload = data[name]
        if payload["userErrors"]:
            raise JourneyError(f"{name}: {payload['userErrors']}")
        return payload  # type: ignore[no-any-return]

    async def sign_in(self, login: str, password: str) -> None:
        data = await self._gql(SIGN_IN, {"input": {"login": login, "password": password}})
        self.token = self._payload(data, "signIn")["token"]

    async def available_subjects(self) -> list[dict[str, Any]]:
        data = await self._gql(AVAILABLE_SUBJECTS, {"sessionCode": SESSION_CODE})
        return data["availableSubjects"]  # type: ignore[no-any-return]

    async def oral_centers(self, subject: str) -> list[dict[str, Any]]:
        variables = {"sessionCode": SESSION_CODE, "subjectCode": subject}
        return (await self._gql(ORAL_CENTERS, variables))["oralCenters"]  # type: ignore[no-any-return]

    async def select(self, subject: str, center: Any = None) -> Any:
        item: dict[str, Any] = {"subjectCode": subject}
        if center is not None:
            item["oralCenterId"] = center
        data = await self._gql(
            SELECT_SUBJECTS, {"input": {"sessionCode": SESSION_CODE, "items": [item]}}
        )
        return self._payload(data, "selectSubjects")["orders"][0]["id"]

    async def start_payment(self, order: Any) -> dict[str, Any]:
        data = await self._gql(START_PAYMENT, {"input": {"orderId": order, "provider": "alipay"}})
        return self._payload(data, "startPayment")["payment"]["redirect"]  # type: ignore[no-any-return]

    async def order_status(self, order: Any) -> str:
        node = (await self._gql(ORDER_STATUS, {"id": order}))["node"]
        return node["status"] if node else "MISSING"

    async def last_look(self) -> int:
        if self.tickets_field:
            viewer = (await self._gql(MY_TICKETS, {"sessionCode": SESSION_CODE}))["viewer"]
            return len(viewer["tickets"])
        viewer = (await self._gql(MY_REGISTRATIONS, {"sessionCode": SESSION_CODE}))["viewer"]
        return len(viewer["registrations"])


class BareDriver:
    """The same steps against the bare reference's JSON endpoints."""

    def __init__(self, http: Connection, *, tickets: bool) -> None:
        self.http = http
        self.tickets = tickets
        self.token = ""

    def _auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    @staticmethod
    def _json(response: Response) -> Any:
        if response.status != 200:
            raise JourneyError(f"HTTP {response.status}: {response.text[:300]}")
        result = response.json()
        if isinstance(result, dict) and result.get("userErrors"):
            raise JourneyError(str(result["userErrors"]))
        return result

    async def sign_in(self, login: str, password: str) -> None:
        answer = self._json(
            await self.http.post_json("/bare/sign-in", {"login": login, "password": password})
        )
        self.token = answer["token"]

    async def available_subjects(self) -> list[dict[str, Any]]:
        response = await self.http.get(
            "/bare/available-subjects", params={"sessionCode": SESSION_CODE}, headers=self._auth()
        )
        return self._json(response)  # type: ignore[no-any-return]

    async def oral_centers(self, subject: str) -> list[dict[str, Any]]:
        response = await self.http.get(
            "/bare/oral-centers",
            params={"sessionCode": SESSION_CODE, "subjectCode": subject},
            headers=self._auth(),
        )
        return self._json(response)  # type: ignore[no-any-return]

    async def select(self, subject: str, center: Any = None) -> Any:
        item: dict[str, Any] = {"subjectCode": subject}
        if center is not None:
            item["oralCenterId"] = center
        response = await self.http.post_json(
            "/bare/select-subjects",
            {"sessionCode": SESSION_CODE, "items": [item]},
            headers=self._auth(),
        )
        return self._json(response)["orders"][0]["id"]

    async def start_payment(self, order: Any) -> dict[str, Any]:
        response = await self.http.post_json(
            "/bare/start-payment", {"orderId": order, "provider": "alipay"}, headers=self._auth()
        )
        return self._json(response)["payment"]["redirect"]  # type: ignore[no-any-return]

    async def order_status(self, order: Any) -> str:
        answer = self._json(await self.http.get(f"/bare/orders/{order}", headers=self._auth()))
        return answer["status"] if answer else "MISSING"

    async def last_look(self) -> int:
        path = "/bare/tickets" if self.tickets else "/bare/registrations"
        return len(self._json(await self.http.get(path, headers=self._auth())))


DRIVERS = {"graphql": GraphQLDriver, "bare": BareDriver}


# --- the rush ------------------------------------------------------------------------------


@dataclass
class Timings:
    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    errors: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    samples: list[str] = field(default_factory=list)

    async def timed(self, name: str, step: Any) -> Any:
        started = time.perf_counter()
        try:
            result = await step
        except (JourneyError, HttpError, KeyError, TypeError, ValueError) as error:
            self.errors[name] += 1
            if len(self.samples) < 5:
                self.samples.append(f"{name}: {error!r}"[:400])
            raise
        self.latencies[name].append(time.perf_counter() - started)
        return result


async def _pay(driver: Any, order: Any, timings: Timings) -> None:
    """startPayment, then what the browser does: post the form to the sandbox's gateway,
    land on its cashier, press pay (the sandbox notifies the server before it answers), and
    the front end checks that the order is paid."""
    redirect = await timings.timed("startPayment", driver.start_payment(order))
    http: Connection = driver.http

    async def open_cashier() -> str:
        fields = {f["name"]: f["value"] for f in redirect["fields"]}
        path = http.path_of(redirect["url"])
        response = await http.post_form(path, fields)
        if response.status in (302, 303):
            path = http.path_of(response.headers["location"], path)
            response = await http.get(path)
        match = _PAY_ACTION.search(response.text)
        if response.status != 200 or match is None:
            raise JourneyError(f"cashier HTTP {response.status}: {response.text[:300]}")
        return http.path_of(match.group(1), path)

    pay_path = await timings.timed("cashier", open_cashier())

    async def press_pay() -> None:
        response = await http.post_form(pay_path, {})
        if response.status not in (200, 302, 303):
            raise JourneyError(f"pay HTTP {response.status}: {response.text[:300]}")

    await timings.timed("pay", press_pay())
    for _ in range(200):
        if await timings.timed("orderPaid", driver.order_status(order)) == "PAID":
            return
        await asyncio.sleep(0.05)
    raise JourneyError(f"order {order} not paid after 10 s")


async def journey(driver: Any, login: str, password: str, timings: Timings) -> None:
    await timings.timed("signIn", driver.sign_in(login, password))
    options = await timings.timed("availableSubjects", driver.available_subjects())
    if not any(o["subject"]["code"] == "CET4" and o["eligible"] for o in options):
        raise JourneyError(f"CET4 not eligible: {options}")
    await _pay(driver, await timings.timed("selectSubjects", driver.select("CET4")), timings)
    centers = await timings.timed("oralCenters", driver.oral_centers("CET-SET4"))
    free = [c for c in centers if c["remainingSeats"] > 0]
    if not free:
        raise JourneyError("no oral seats left")
    oral = await timings.timed(
        "selectSubjects", driver.select("CET-SET4", random.choice(free)["id"])
    )
    await _pay(driver, oral, timings)
    await timings.timed("lastLook", driver.last_look())


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def _rush(
    target: str, base_url: str, logins: list[str], password: str, concurrency: int, tickets: bool
) -> dict[str, Any]:
    queue: asyncio.Queue[str] = asyncio.Queue()
    for login in logins:
        queue.put_nowait(login)
    timings = Timings()
    completed = 0
    failed = 0

    async def worker() -> None:
        nonlocal completed, failed
        while not queue.empty():
            login = queue.get_nowait()
            http = Connection(base_url)  # one browser per candidate
            try:
                await journey(DRIVERS[target](http, tickets=tickets), login, password, timings)
                completed += 1
            except (JourneyError, HttpError, KeyError, TypeError, ValueError):
                failed += 1
            finally:
                await http.close()

    cpu = _cpu_seconds()
    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.perf_counter() - started
    return {
        "completed": completed,
        "failed": failed,
        "elapsed": elapsed,
        "latencies": dict(timings.latencies),
        "errors": dict(timings.errors),
        "samples": timings.samples,
        "client_cpu": _cpu_seconds() - cpu,
    }


def run_rush(
    target: str, base_url: str, logins: list[str], password: str, concurrency: int, tickets: bool
) -> dict[str, Any]:
    """Entry point of the load process (picklable arguments and result)."""
    import uvloop

    return uvloop.run(_rush(target, base_url, logins, password, concurrency, tickets))


# --- the overview read ---------------------------------------------------------------------


async def _overview(
    target: str,
    base_url: str,
    tokens: list[str],
    query: str,
    concurrency: int,
    duration: float,
    warmup: float,
) -> dict[str, Any]:
    latencies: list[float] = []
    errors = 0
    samples: list[str] = []
    counter = 0
    loop = asyncio.get_running_loop()
    measure_from = loop.time() + warmup
    stop_at = measure_from + duration
    body_graphql = {"query": query, "variables": {}}

    async def worker() -> None:
        nonlocal errors, counter
        http = Connection(base_url)
        try:
            while loop.time() < stop_at:
                token = tokens[counter % len(tokens)]
                counter += 1
                headers = {"Authorization": f"Bearer {token}"}
                started = time.perf_counter()
                try:
                    if target == "graphql":
                        response = await http.post_json("/graphql", body_graphql, headers=headers)
                    else:
                        response = await http.get("/bare/overview", headers=headers)
                    ok = response.status == 200 and b'"errors"' not in response.body
                except HttpError as error:
                    ok, response = False, Response(0, {}, repr(error).encode(), "")
                elapsed = time.perf_counter() - started
                done = loop.time()
                if not ok:
                    errors += 1
                    if len(samples) < 3:
                        samples.append(response.text[:300])
                elif measure_from <= done < stop_at:  # answered inside the measured window
                    latencies.append(elapsed)
        finally:
            await http.close()

    cpu = _cpu_seconds()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return {
        "requests": len(latencies),
        "elapsed": duration,
        "latencies": latencies,
        "errors": errors,
        "samples": samples,
        "client_cpu": _cpu_seconds() - cpu,
    }


def run_overview(
    target: str,
    base_url: str,
    tokens: list[str],
    query: str,
    concurrency: int,
    duration: float,
    warmup: float,
) -> dict[str, Any]:
    import uvloop

    return uvloop.run(_overview(target, base_url, tokens, query, concurrency, duration, warmup))
