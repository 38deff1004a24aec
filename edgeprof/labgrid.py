"""Boards from a labgrid coordinator: places reserved and acquired for the run, released afterwards.

    with acquire_places("lab-server:20408", reserve={"family": "tx2"}, count=2, wait_s=600) as devices:
        measure_jobs(devices[0], ...)

`--place NAME` and `--reserve KEY=VALUE... [--count N]` both go through labgrid reservations (labgrid's own
client, labgrid.remote.client, over gRPC): the coordinator queues them by priority and age, so a second run
asking for a busy place waits in that queue instead of failing or polling. A place named with --place is
reserved by its name (the coordinator matches every place's implicit `name` tag). Once every reservation is
allocated its places are acquired, and each place's NetworkService resource (address, username, port) is
where edgeprof connects over SSH; its `family` tag names the device profile, so the boards need no
inventory entry. SSH keys and host keys come from ~/.ssh (config and known_hosts) as for any host.

Everything taken is given back (places released, reservations cancelled) when the block ends, also on an
error or Ctrl-C. The board lease (edgeprof.power.lease) stays on underneath: it protects the board from
runs that bypass labgrid.
"""
from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager

from .devices import Device, builtin_profiles
from .errors import BoardControlError

DEFAULT_COORDINATOR = "127.0.0.1:20408"   # labgrid's own default (LG_COORDINATOR)
_POLL_S = 1.0   # labgrid-client's poll interval; a waiting reservation expires if not polled for 60 s


class LabgridError(BoardControlError):
    """The coordinator cannot give the places asked for; the message says which and why."""


def parse_filter(terms: Sequence[str]) -> dict[str, str]:
    """`family=tx2 site=lab2` (or comma-separated) as labgrid's tag filter."""
    tags = {}
    for term in (t for arg in terms for t in arg.split(",") if t):
        key, sep, value = term.partition("=")
        if not sep or not key or not value:
            raise LabgridError(f"{term!r} is not a tag filter: use KEY=VALUE, e.g. family=tx2")
        tags[key] = value
    return tags


class _Session:
    """labgrid's ClientSession and the calls edgeprof makes with it, run on its event loop."""

    def __init__(self, coordinator: str):
        try:
            import grpc
            from labgrid.remote.client import Error, start_session
            from labgrid.remote.common import Reservation, ReservationState
            from labgrid.remote.generated import labgrid_coordinator_pb2
        except ImportError:
            raise LabgridError("--place and --reserve need labgrid: pip install 'edgeprof[labgrid]'") from None
        self._grpc_error, self._client_error, self._pb2 = grpc.aio.AioRpcError, Error, labgrid_coordinator_pb2
        self._reservation, self._waiting = Reservation, ReservationState.waiting
        self.coordinator = coordinator
        try:
            self.session = start_session(coordinator)
        except Error as e:
            raise LabgridError(f"labgrid coordinator {coordinator}: {e}") from None

    def _call(self, method: str, request):
        try:
            return self.session.loop.run_until_complete(getattr(self.session.stub, method)(request))
        except self._grpc_error as e:
            raise LabgridError(f"labgrid coordinator {self.coordinator}: {method}: {e.details()}") from None

    def _sync(self) -> None:
        # The session's view of places and resources is updated by the coordinator's stream; this waits
        # until it has seen the effect of the calls made so far.
        self.session.loop.run_until_complete(self.session.sync_with_coordinator())

    def reserve(self, tags: Mapping[str, str]) -> str:
        request = self._pb2.CreateReservationRequest(
            filters={"main": self._pb2.Reservation.Filter(filter=dict(tags))}, prio=0.0)
        return self._call("CreateReservation", request).reservation.token

    def allocation(self, token: str) -> str | None:
        """The place allocated to the reservation, None while it waits (polling keeps it alive)."""
        response = self._call("PollReservation", self._pb2.PollReservationRequest(token=token))
        reservation = self._reservation.from_pb2(response.reservation)
        if reservation.state is self._waiting:
            return None
        places = reservation.allocations.get("main") or []
        if not places:
            raise LabgridError(f"labgrid reservation {token} is {reservation.state.name}")
        return places[0]

    def cancel(self, token: str) -> None:
        self._call("CancelReservation", self._pb2.CancelReservationRequest(token=token))

    def acquire(self, place: str) -> None:
        self._call("AcquirePlace", self._pb2.AcquirePlaceRequest(placename=place))
        self._sync()

    def release(self, place: str) -> None:
        self._call("ReleasePlace", self._pb2.ReleasePlaceRequest(placename=place))

    def holders(self, tags: Mapping[str, str]) -> str:
        """Who holds the places a filter matches, for the message when a reservation times out."""
        self._sync()
        held = [f"{name} ({place.acquired or 'reserved ' + str(place.reservation)})"
                for name, place in sorted(self.session.places.items())
                if all(place.tags.get(k) == v or (k == "name" and name == v) for k, v in tags.items())
                and (place.acquired or place.reservation)]
        return ", ".join(held) or "no place holds them: is a place with these tags defined?"

    def device(self, name: str) -> Device:
        """The acquired place as an edgeprof device: its NetworkService and its family tag."""
        self._sync()
        place = self.session.places[name]
        try:
            resources = self.session.get_target_resources(place)
        except self._client_error as e:   # e.g. the place's exporter went away
            raise LabgridError(f"labgrid place {name}: {e}") from None
        services = [entry for (_, cls), entry in resources.items() if cls == "NetworkService"]
        if len(services) != 1:
            raise LabgridError(f"labgrid place {name} needs exactly one NetworkService resource (the board's SSH "
                               f"address), it has {len(services)}")
        family = place.tags.get("family")
        profiles = builtin_profiles()
        if family not in profiles:
            raise LabgridError(f"labgrid place {name} needs a tag family=FAMILY, one of {', '.join(sorted(profiles))}"
                               f" (labgrid-client -p {name} set-tags family=tx2); its tags: {place.tags}")
        params = services[0].params
        return Device(name=name, profile=profiles[family], host=params["address"],
                      user=params.get("username") or None, port=params.get("port") or None,
                      tags=tuple(f"{k}={v}" for k, v in sorted(place.tags.items())),
                      defined_in=f"labgrid place {name} at {self.coordinator}")

    def close(self) -> None:
        loop = self.session.loop
        loop.run_until_complete(self.session.stop())
        loop.run_until_complete(self.session.close())


@contextmanager
def acquire_places(coordinator: str | None, *, places: Sequence[str] = (), reserve: Mapping[str, str] | None = None,
                   count: int = 1, wait_s: float = 0,
                   status: Callable[[str], None] = lambda m: None) -> Iterator[list[Device]]:
    """Reserve and acquire the named places, or `count` places matching the tag filter `reserve`; yields
    them as devices, in the order asked. Raises LabgridError when the coordinator cannot be reached, or the
    reservations are not all allocated within wait_s seconds (nothing is kept then)."""
    wanted = [{"name": name} for name in places] + ([dict(reserve)] * count if reserve else [])
    if not wanted:
        raise LabgridError("name a labgrid place (--place NAME) or a tag filter (--reserve family=tx2)")
    coordinator = coordinator or DEFAULT_COORDINATOR
    session = _Session(coordinator)
    tokens: list[str] = []
    acquired: list[str] = []
    try:
        for tags in wanted:
            tokens.append(session.reserve(tags))
        allocated: dict[str, str] = {}
        deadline = time.monotonic() + wait_s
        while True:
            for token in tokens:
                if token not in allocated and (place := session.allocation(token)):
                    allocated[token] = place
            if len(allocated) == len(tokens):
                break
            pending = [wanted[i] for i, token in enumerate(tokens) if token not in allocated]
            described = "; ".join(" ".join(f"{k}={v}" for k, v in tags.items()) for tags in pending)
            if time.monotonic() >= deadline:
                raise LabgridError(f"labgrid reservation for {described} not satisfied within {wait_s:g} s (held: "
                                   f"{session.holders(pending[0])}). Pass --wait SECONDS to queue longer.")
            status(f"waiting for labgrid to allocate {described}")
            time.sleep(_POLL_S)
        for token in tokens:
            session.acquire(allocated[token])
            acquired.append(allocated[token])
        yield [session.device(name) for name in acquired]
    finally:
        # Also on errors and Ctrl-C; the reservations are cancelled even when a release fails.
        try:
            for name in acquired:
                session.release(name)
            for token in tokens:
                session.cancel(token)
        finally:
            session.close()


__all__ = ["DEFAULT_COORDINATOR", "LabgridError", "acquire_places", "parse_filter"]
