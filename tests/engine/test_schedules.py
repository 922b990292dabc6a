import math

from engine.schedules import Constant, Cosine, Plateau


def test_constant_and_cosine():
    assert Constant(0.1).lr(1000) == 0.1
    cosine = Cosine(1.0, 0.0, 100)
    assert cosine.lr(0) == 1.0 and math.isclose(cosine.lr(50), 0.5) and math.isclose(cosine.lr(100), 0.0)


def test_plateau_lowers_the_rate_on_small_improvements_and_stops_when_stale():
    schedule = Plateau(lr_start=0.01, lr_end=0.0001, mu=0.1, patience=3, factor=10, cooldown=0)
    rates = []
    for metric in [20.0, 25.0, 25.05, 25.5, 25.52, 25.52, 25.52, 25.4]:
        stop = schedule.observe(metric)
        rates.append(schedule.lr(0))
    assert rates == [0.01, 0.01, 0.001, 0.001, 0.0001, 0.0001, 0.0001, 0.0001]
    assert stop is True  # three observations without improvement after 25.52


def test_plateau_state_round_trip():
    first = Plateau(0.01, 0.0001, 0.1, 5)
    first.observe(10.0)
    second = Plateau(0.01, 0.0001, 0.1, 5)
    second.load_state_dict(first.state_dict())
    assert second.state_dict() == first.state_dict()
