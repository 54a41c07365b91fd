import pytest

from satbridge.core.addresses import ListenAddress, parse_listen
from satbridge.errors import InvalidArgument


@pytest.mark.parametrize(
    ("text", "host", "port"),
    [("[::]:50051", "::", 50051), ("0.0.0.0:1", "0.0.0.0", 1), ("localhost:0", "localhost", 0), ("[::1]:9", "::1", 9)],
)
def test_good(text, host, port):
    assert parse_listen(text, field="f") == ListenAddress(host, port)


def test_round_trip_brackets_v6():
    assert str(ListenAddress("::", 50051)) == "[::]:50051"
    assert str(ListenAddress("127.0.0.1", 1)) == "127.0.0.1:1"


@pytest.mark.parametrize("bad", ["50051", ":50051", "::1:5", "[::1]5", "[zz]:5", "host:65536", "host:-1", "host:x"])
def test_bad_names_the_field(bad):
    with pytest.raises(InvalidArgument) as exc:
        parse_listen(bad, field="server.listen")
    assert exc.value.field == "server.listen"
