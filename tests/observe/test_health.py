from kstream.observe import Health


class FakeClock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def test_alive_until_beats_stop_for_stall_after():
    clock = FakeClock()
    h = Health(stall_after=10, clock=clock)
    assert h.alive()  # creation counts as the first beat
    clock.now += 9
    assert h.alive()
    clock.now += 2
    assert not h.alive()
    body = h.liveness()
    assert body["alive"] is False
    assert "stalled" in body["reason"] and "11.0s" in body["reason"]
    h.beat()
    assert h.alive()
    assert h.liveness() | {"seconds_since_beat": 0} == {
        "alive": True,
        "reason": "ok",
        "seconds_since_beat": 0,
        "stall_after": 10.0,
        "beats": 1,
    }


def test_readiness_follows_set_ready():
    h = Health(stall_after=1)
    assert h.readiness() == {"ready": False, "reason": "starting"}
    h.set_ready(False, "restoring store counts")
    assert h.readiness() == {"ready": False, "reason": "restoring store counts"}
    h.set_ready(True, "")
    assert h.ready() and h.readiness() == {"ready": True, "reason": "ok"}
    assert h.status()["readiness"]["ready"] is True
    assert h.status()["liveness"]["alive"] is True
