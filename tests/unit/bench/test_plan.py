"""The planner's arithmetic on hand-computed cases, its stages and bottlenecks, and its queueing."""

from __future__ import annotations

import math

import pytest

from summit.bench.plan import SERIES, Assumptions, PlanError, apply_settings, make_plans, parse_users, resolve, sweep
from summit.bench.plan.model import compute, daily_per_dau, talk_stage
from summit.bench.plan.queueing import erlang_c, max_rate, p99_ms, servers_needed
from summit.bench.plan.stages import first_users
from summit.blueprint.model import Workload

# a user model whose figures divide evenly: 120 requests per daily active, writes 1/100 of them
WL = Workload(daily_active_ratio=0.5, sessions_per_day=8, requests_per_session=15, peak_to_average=2.5, reads_per_write=99, uploads_per_dau=0.3)
USERS = 864_000  # 432,000 daily actives: 51.84M requests a day, 600/s on average, 1,500/s at peak


def plan_at(users: int, workload: Workload = WL, **assumed: float) -> dict:
    demands, _, _ = resolve()
    return compute(users, workload, Assumptions(**assumed), demands)


def test_daily_mix_per_daily_active() -> None:
    mix = daily_per_dau(WL)
    assert mix == pytest.approx({"requests": 120, "reads": 118.8, "writes": 0.9, "uploads": 0.3})


def test_uploads_never_fewer_than_the_user_model_says() -> None:
    mix = daily_per_dau(WL.model_copy(update={"reads_per_write": 10_000, "uploads_per_dau": 2}))
    assert mix["uploads"] == 2 and mix["writes"] == 0 and mix["reads"] == pytest.approx(118)


def test_peak_rates_from_users() -> None:
    p = plan_at(USERS)
    assert p["people"]["daily_active"] == 432_000
    assert p["average_rps"]["total"] == pytest.approx(600)
    assert p["peak_rps"]["total"] == pytest.approx(1500)
    assert p["peak_rps"]["reads"] == pytest.approx(1485)
    assert p["peak_rps"]["writes"] == pytest.approx(11.25)
    assert p["peak_rps"]["uploads"] == pytest.approx(3.75)
    assert p["peak_rps"]["images"] == pytest.approx(1485 * 3)


def test_web_and_worker_cores_from_demands_and_utilisation() -> None:
    p = plan_at(USERS)
    # web: 1485 x 6 ms + 11.25 x 8 ms + 3.75 x 300 ms = 10,125 ms of CPU per second
    assert p["web"]["busy_cores"] == pytest.approx(10.125)
    assert p["web"]["cores"] == 17  # ceil(10.125 / 0.6)
    assert p["web"]["nodes"] == 3  # 8-core nodes
    assert p["web"]["cpu_ms_per_request"] == pytest.approx(6.75)
    # worker: 3.75 thumbnails/s x 590 ms + 15 tasks/s x 2 ms = 2.2425 cores, at 70%
    assert p["worker"]["busy_cores"] == pytest.approx(2.2425)
    assert p["worker"]["cores"] == 4
    assert p["queue"]["messages_per_s"] == pytest.approx(3.75 + 15)
    # the WAF: 1,500 dynamic requests/s at 1/1.3 ms each
    assert p["waf"]["busy_cores"] == pytest.approx(1500 / 1300)


def test_lower_utilisation_target_needs_more_cores() -> None:
    assert plan_at(USERS, target_utilisation=0.3)["web"]["cores"] == 34  # ceil(10.125 / 0.3)


def test_storage_growth_per_day_and_year() -> None:
    p = plan_at(USERS)
    per_day = 432_000 * 0.3 * (2_000_000 + 150_000)
    assert p["objects"]["growth_bytes_per_day"] == pytest.approx(per_day)  # 278.64 GB
    assert p["objects"]["growth_bytes_per_year"] == pytest.approx(per_day * 365)
    assert p["objects"]["stored_bytes"] == pytest.approx(per_day * 365)
    assert plan_at(USERS, retention_days=30)["objects"]["stored_bytes"] == pytest.approx(per_day * 30)
    assert p["objects"]["raw_bytes"] == pytest.approx(per_day * 365 * 3)


def test_cache_memory_is_the_working_set_over_the_fill_ratio() -> None:
    p = plan_at(USERS)
    working = 432_000 * 16_384 + 129_600 * 7 * 2_048
    assert p["cache"]["working_set_bytes"] == pytest.approx(working)
    assert p["cache"]["memory_bytes"] == pytest.approx(working / 0.7)
    assert p["cache"]["ops_per_s"] == pytest.approx(1485 * 3 + 15 * 2)


def test_shards_from_data_size() -> None:
    # 864,000 accounts x 2,048 B + a year of (129,600 photos x 1,024 B + 388,800 writes x 300 B) a day
    data = 864_000 * 2_048 + (129_600 * 1_024 + 388_800 * 300) * 365
    p = plan_at(USERS, max_shard_bytes=10e9)
    assert p["db"]["data_bytes"] == pytest.approx(data)  # 92.8 GB
    assert p["db"]["shards"] == 10
    assert plan_at(USERS)["db"]["shards"] == 1


def test_shards_from_write_load() -> None:
    # 15 writes/s x 3 ms = 0.045 cores; a 0.1-core node at 50% takes 0.05: one shard; at 20%, 3
    assert plan_at(USERS, db_cores_per_node=0.1)["db"]["shards"] == 1
    assert plan_at(USERS, db_cores_per_node=0.1, db_target_utilisation=0.2)["db"]["shards"] == 3


def test_read_replicas_from_read_load_after_the_cache() -> None:
    p = plan_at(USERS, cache_hit_ratio=0.9)
    assert p["db"]["read_qps"] == pytest.approx(148.5)
    assert p["db"]["load_replicas_per_shard"] == 0
    assert p["db"]["replicas_per_shard"] == 1  # the talk's replica from stage 10k on
    # no cache, a 1-core node at 50%: 1.485 cores of reads need ceil(1.485 / 0.5) = 3 replicas
    p = plan_at(USERS, cache_hit_ratio=0, db_cores_per_node=1)
    assert p["db"]["read_busy_cores"] == pytest.approx(1.485)
    assert p["db"]["replicas_per_shard"] == 3
    assert plan_at(5_000, replicas_min=1)["db"]["replicas"] == 0  # stage 1k: no replica yet


def test_cdn_offload_and_egress() -> None:
    p = plan_at(USERS)
    egress = 1485 * 3 * 80_000
    assert p["cdn"]["egress_bytes_per_s"] == pytest.approx(egress)
    assert p["cdn"]["offload_bytes_per_s"] == pytest.approx(egress * 0.95)
    assert p["cdn"]["origin_bytes_per_s"] == pytest.approx(egress * 0.05)


@pytest.mark.parametrize(
    ("users", "stage"),
    [(1, "1"), (2, "1+"), (1_000, "1+"), (1_001, "1k"), (10_000, "1k"), (10_001, "10k"), (500_000, "10k"), (500_001, "500k"),
     (1_000_000, "500k"), (1_000_001, "1m"), (5_000_000, "1m"), (5_000_001, "5m"), (10_000_000, "5m"), (10_000_001, "10m")],
)
def test_talk_stage_at_the_thresholds(users: int, stage: str) -> None:
    assert talk_stage(users) == stage


def test_next_bottleneck_is_one_web_process_at_its_exact_user_count() -> None:
    workload = Workload()  # the blueprint's default user model
    p = make_plans([1], workload)[0]
    nb = p["next_bottleneck"]
    assert (nb["name"], nb["stage"]) == ("one web process", "1k")
    # 0.5 x (118.81 x 6 + 0.888 x 8 + 0.3 x 300) ms / 86,400 x 2.5 = 1.1718e-5 cores per user; 0.6 core at 51,202
    per_user = 0.5 * (120 * 100 / 101 * 6 + (120 / 101 - 0.3) * 8 + 0.3 * 300) / 86_400 * 2.5 / 1000
    assert nb["users"] == math.ceil(0.6 / per_user) == 51_202
    assert plan_at(51_201, workload)["web"]["cores"] == 1
    assert plan_at(51_202, workload)["web"]["cores"] == 2
    assert p["stage"]["stage"] == "1"


def test_next_bottleneck_after_every_ceiling_is_the_next_shard_split() -> None:
    p = make_plans([10**9], Workload())[0]
    nb = p["next_bottleneck"]
    assert nb["kind"] == "resize" and nb["users"] > 10**9
    assert plan_at(nb["users"], Workload())["db"]["shards"] == p["db"]["shards"] + 1
    assert plan_at(nb["users"] - 1, Workload())["db"]["shards"] == p["db"]["shards"]


def test_structure_raises_the_stage_above_the_talks_threshold() -> None:
    # an origin that can serve almost nothing needs the CDN (stage 10k) long before 10,000 users
    p = make_plans([2_000], WL, Assumptions(origin_gbps=1e-6))[0]
    assert p["stage"]["talk"] == "1k"
    assert p["stage"]["stage"] == "10k" and p["stage"]["structure"] == "10k"
    assert any("images served by the origin" in why for why in p["stage"]["why"])


def test_ceilings_come_in_user_order_with_a_stage_each() -> None:
    ceilings = make_plans([1], Workload())[0]["ceilings"]
    crossed = [c["users"] for c in ceilings if c["users"] is not None]
    assert crossed == sorted(crossed)
    assert {c["name"] for c in ceilings} >= {"one web process", "one database for the data", "database reads without a cache"}


def test_resources_never_shrink_as_users_grow() -> None:
    data = sweep(Workload(), per_decade=6)
    for key, *_ in SERIES:
        values = data[key]
        assert all(b >= a for a, b in zip(values, values[1:], strict=False)), key
    counts = [plan_at(u, Workload()) for u in data["users"]]
    for path in (("lb", "nodes"), ("cache", "nodes"), ("queue", "brokers"), ("cdn", "edge_nodes"), ("waf", "cores"), ("objects", "volume_servers")):
        values = [p[path[0]][path[1]] for p in counts]
        assert all(b >= a for a, b in zip(values, values[1:], strict=False)), path


def test_ten_million_users_headline() -> None:
    p = make_plans([10_000_000], Workload())[0]
    assert p["peak_rps"]["total"] == pytest.approx(17_361.1, rel=1e-4)
    assert p["web"]["cores"] == 196 and p["db"]["shards"] == 3
    assert p["web"]["predicted_p99_ms"] < Workload().p99_target_ms


# ---- queueing -----------------------------------------------------------------------------------


def test_erlang_c_hand_computed() -> None:
    assert erlang_c(1, 0.5) == pytest.approx(0.5)  # M/M/1: P(wait) = rho
    assert erlang_c(2, 1.0) == pytest.approx(1 / 3)
    assert erlang_c(2, 2.0) == 1.0


def test_mm1_p99_and_capacity() -> None:
    # M/M/1: response time is exponential with rate mu - lambda; p99 = ln(100) / (mu - lambda)
    assert p99_ms(400, 2.0, 1) == pytest.approx(1000 * math.log(100) / 100, rel=1e-6)
    assert max_rate(2.0, 1, 250) == pytest.approx(500 - 1000 * math.log(100) / 250, rel=1e-6)
    assert p99_ms(600, 2.0, 1) == math.inf


def test_servers_needed_meets_both_utilisation_and_p99() -> None:
    assert servers_needed(100, 10, 0.5) == 2  # 1 core busy at 50%
    # a 50 ms budget with 10 ms requests: utilisation alone allows 2 servers, the p99 needs more
    c = servers_needed(100, 10, 0.9, p99_budget_ms=50)
    assert p99_ms(100, 10, c) <= 50 < p99_ms(100, 10, c - 1)


def test_first_users_finds_the_boundary() -> None:
    assert first_users(lambda u: u >= 123_457) == 123_457
    assert first_users(lambda u: False) is None
    assert first_users(lambda u: True) == 1


# ---- inputs ------------------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "users"), [("10000000", [10_000_000]), ("10M", [10_000_000]), ("1.5k", [1_500]), ("1e7", [10_000_000]),
                                             ("10_000", [10_000]), ("1,1k, 10M", [1, 1_000, 10_000_000])])
def test_parse_users(text: str, users: list[int]) -> None:
    assert parse_users(text) == users


@pytest.mark.parametrize("text", ["0", "-5", "abc", "1.5", "", "1e11", "10x"])
def test_parse_users_rejects_bad_counts(text: str) -> None:
    with pytest.raises(PlanError):
        parse_users(text)


def test_assumptions_validate_and_name_unknown_keys() -> None:
    with pytest.raises(PlanError, match="cache_hit_ratio"):
        Assumptions(cache_hit_ratio=1.5)
    with pytest.raises(PlanError, match="target_utilisation"):
        Assumptions(target_utilisation=0)
    with pytest.raises(PlanError, match="unknown plan assumption 'cache_hitratio'"):
        Assumptions.with_overrides({"cache_hitratio": 0.5})
    assert Assumptions.with_overrides({"cache_hit_ratio": 0}).cache_hit_ratio == 0


def test_settings_reach_the_workload_or_the_assumptions() -> None:
    workload, assumed = apply_settings(Workload(), Assumptions(), ["daily_active_ratio=0.25", "cache_hit_ratio=0.8"])
    assert workload.daily_active_ratio == 0.25 and assumed.cache_hit_ratio == 0.8
    for bad in (["nonsense"], ["daily_active_ratio=2"], ["cache_hit_ratio=x"], ["no_such=1"]):
        with pytest.raises(PlanError):
            apply_settings(Workload(), Assumptions(), bad)
