"""server/priority.py: bulk streams pause only while unary calls are recent (the pauses are
recorded, not timed)."""

import contextlib

import pytest

from satbridge.server import priority


@pytest.fixture
def pauses(monkeypatch):
    seen: list[float] = []

    async def sleep(seconds: float) -> None:
        seen.append(seconds)

    monkeypatch.setattr(priority.asyncio, "sleep", sleep)
    return seen


async def test_bulk_never_pauses_without_control_calls(pauses):
    p = priority.Priority(recent=0.2, pause=0.05)
    for _ in range(20):
        await p.bulk()
    assert pauses == []


async def test_bulk_pauses_while_control_calls_are_recent_and_not_after(pauses, monkeypatch):
    clock = [100.0]
    monkeypatch.setattr(priority.time, "monotonic", lambda: clock[0])
    p = priority.Priority(recent=0.2, pause=0.02)
    p.control()
    await p.bulk()
    clock[0] += 0.1
    await p.bulk()
    assert pauses == [0.02, 0.02]
    clock[0] += 0.2
    await p.bulk()
    assert pauses == [0.02, 0.02]


async def test_small_chunks_pause_their_share_so_bulk_keeps_a_floor(pauses, monkeypatch):
    """Red team: 4 KiB chunks each paused the full 10 ms (0.4 MiB/s); now CHUNK bytes per PAUSE."""
    monkeypatch.setattr(priority.time, "monotonic", lambda: 100.0)
    p = priority.Priority(recent=0.2, pause=0.02)
    p.control()
    for _ in range(256):
        await p.bulk(4096)
    await p.bulk(priority.CHUNK)
    await p.bulk(4 * priority.CHUNK)
    assert sum(pauses[:256]) == pytest.approx(0.02)  # 256 x 4 KiB = one CHUNK
    assert pauses[-2:] == [0.02, 0.02]


class _Abort(Exception):
    pass


class _Context:
    """The few ServicerContext calls the guard makes; `pem` is the client certificate or None."""

    def __init__(self, pem: bytes | None) -> None:
        self.pem = pem
        self.code = None

    def auth_context(self):
        return {"x509_pem_cert": [self.pem]} if self.pem else {}

    def invocation_metadata(self):
        return ()

    def set_trailing_metadata(self, _md) -> None:
        pass

    def peer(self) -> str:
        return "ipv4:192.0.2.9:4000"

    async def abort(self, code, message, trailer=()):
        self.code = code
        raise _Abort(message)


async def _call(guard, method: str, context: _Context) -> None:
    import grpc

    async def behavior(request, ctx):
        return "ok"

    async def continuation(details):
        return grpc.unary_unary_rpc_method_handler(behavior)

    class Details:
        pass

    details = Details()
    details.method = method
    handler = await guard.intercept_service(continuation, details)
    with contextlib.suppress(_Abort):
        await handler.unary_unary(object(), context)


@pytest.mark.parametrize(
    ("port", "trusted", "method", "marks"),
    [
        ("PAIRING", False, "/satbridge.v1.Pairing/GetIdentity", False),  # a stranger polling
        ("PAIRING", False, "/satbridge.v1.System/GetStatus", False),  # refused there
        ("MANAGEMENT", False, "/satbridge.v1.System/GetStatus", False),  # unpaired: UNAUTHENTICATED
        ("MANAGEMENT", True, "/satbridge.v1.Pairing/Pair", False),  # PERMISSION_DENIED
        ("MANAGEMENT", True, "/satbridge.v1.System/GetStatus", True),  # the paired server
    ],
)
async def test_only_guarded_management_unary_calls_make_uploads_yield(monkeypatch, port, trusted, method, marks):
    """Red team: every unary call marked before the guard, so a stranger spamming GetIdentity on
    the pairing port (or an unpaired caller on the management port) paused the paired server's
    uploads 10 ms a chunk for as long as it liked."""
    from satbridge.server import auth

    monkeypatch.setattr(auth, "peer_fingerprint", lambda ctx: "ab" * 32 if ctx.pem else None)
    fresh = priority.Priority()
    monkeypatch.setattr(auth, "PRIORITY", fresh)
    guard = auth.GuardInterceptor(auth.Port[port], lambda fp: trusted)
    await _call(guard, method, _Context(b"cert"))
    assert (fresh._last_control > 0) is marks
