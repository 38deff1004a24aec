"""Power-mode sweeps read back: a row per mode, the Pareto front, the budget answers, and what is left out."""
from edgeprof.reporting.html import write_report
from edgeprof.reporting.power_modes import describe_budgets, power_mode_sweeps, sweep_table
from edgeprof.reporting.terminal import DataConsole
from edgeprof.result import Result

# (mode, latency ms, board W): MAXN fastest and hungriest; MAXP_CORE_ALL dominated by MAXP_CORE_ARM (slower
# at more power); MAXQ the frugal end of the front.
MODES = [("MAXN", 10.0, 12.0), ("MAXQ", 25.0, 5.0), ("MAXP_CORE_ALL", 18.0, 9.5), ("MAXP_CORE_ARM", 15.0, 9.0)]


def swept(mode, latency, watts, **changes) -> Result:
    result = Result(device="tx2", model="alexnet", backend="caffe", batch=1, run_id="r1", span="caffe_forward",
                    state={"power_sweep": {"mode_name": mode, "mode_id": 0},
                           "clocks_end": {"gpu": {"cur_hz": 854250000}, "emc": {"cur_hz": 1331200000},
                                          "cpus": [{"online": True, "cur_hz": 1267200000}, {"online": False}]}},
                    telemetry={"power_total": {"definition": "VDD_IN", "mean_w": watts},
                               "energy": {"per_inference_j": watts * latency / 1000},
                               "gpu_freq_mhz": {"min": 850, "max": 854}},
                    throughput_ips=1000 / latency)
    result.latency_ms["mean"] = latency
    for key, value in changes.items():
        setattr(result, key, value)
    return result


def sweep_of(results):
    [sweep] = power_mode_sweeps(results)
    return sweep


def test_the_front_holds_the_modes_no_other_beats_on_both():
    sweep = sweep_of([swept(*m, id=i + 1) for i, m in enumerate(MODES)])
    assert {p.mode for p in sweep.points if p.pareto} == {"MAXN", "MAXQ", "MAXP_CORE_ARM"}
    point = next(p for p in sweep.points if p.mode == "MAXQ")
    assert (point.latency_ms, point.statistic, point.power_w) == (25.0, "mean, caffe_forward", 5.0)
    assert point.clocks_mhz == {"GPU": 854, "EMC": 1331.2, "CPU": 1267.2}     # telemetry first, then the reading


def test_budget_answers():
    sweep = sweep_of([swept(*m) for m in MODES])
    assert sweep.fastest_under(9.0).mode == "MAXP_CORE_ARM"     # at the budget counts as under it
    assert sweep.fastest_under(100).mode == "MAXN" and sweep.fastest_under(4.9) is None
    assert sweep.lowest_power_meeting(16).mode == "MAXP_CORE_ARM"
    assert sweep.lowest_power_meeting(30).mode == "MAXQ" and sweep.lowest_power_meeting(9.9) is None
    assert describe_budgets(sweep, 9.5, 9.9) == [
        "fastest mode under 9.5 W: MAXP_CORE_ARM (15 ms mean, caffe_forward, 9 W)",
        "lowest-power mode meeting 9.9 ms: none of the measured modes"]


def test_a_mode_without_power_is_shown_but_not_weighed_and_a_refused_one_is_listed():
    no_power = swept("MAXN", 1.0, 12.0, telemetry={"power_total": {"mean_w": None}})
    refused = swept("MAXP_CORE_DENVER", 1.0, 1.0).fail("not measured in power mode MAXP_CORE_DENVER: needs a reboot")
    sweep = sweep_of([no_power, swept("MAXQ", 25.0, 5.0), refused])
    assert sweep.fastest_under(100).mode == "MAXQ" and not next(p for p in sweep.points if p.mode == "MAXN").pareto
    assert sweep.refused == {"MAXP_CORE_DENVER": "not measured in power mode MAXP_CORE_DENVER: needs a reboot"}
    assert describe_budgets(sweep, 100, None)[-1].endswith(": MAXN")
    console = DataConsole(width=200, record=True)
    console.print(sweep_table(sweep))
    text = console.export_text()
    assert "not measured: MAXP_CORE_DENVER: not measured in power mode" in text and "* " in text


def test_sweeps_are_apart_per_item_and_the_latest_result_of_a_mode_counts():
    results = [swept("MAXN", 10.0, 12.0, id=1), swept("MAXN", 11.0, 12.5, id=2),
               swept("MAXN", 40.0, 12.0, id=3, batch=8), swept("MAXN", 5.0, 1.0, id=4, state={})]
    sweeps = power_mode_sweeps(results)
    assert [(s.batch, [p.result.id for p in s.points]) for s in sweeps] == [(1, [2]), (8, [3])]


def test_mode_names_are_data_in_the_table_and_the_report(tmp_path):
    hostile = swept("[bold]<b>MAX$x^2$</b>", 10.0, 12.0, id=1)
    console = DataConsole(width=200, record=True)
    console.print(sweep_table(sweep_of([hostile])))
    assert "[bold]<b>MAX$x^2$</b>" in console.export_text()
    page = tmp_path / "r.html"
    plots = write_report([hostile, swept("MAXQ", 25.0, 5.0, id=2)], page, budget_w=6, budget_ms=20)
    text = page.read_text()
    assert "&lt;b&gt;MAX$x^2$&lt;/b&gt;" in text and "<b>MAX" not in text
    assert any(p.section == "power-modes" for p in plots)
    assert "fastest mode under 6 W: MAXQ" in text and "lowest-power mode meeting 20 ms: [bold]&lt;b&gt;MAX" in text


def test_stored_state_of_the_wrong_types_gives_no_clock_rather_than_an_error():
    odd = swept("MAXN", 10.0, 12.0, telemetry={"power_total": {"mean_w": 12.0}, "gpu_freq_mhz": {"max": "fast"}},
                state={"power_sweep": {"mode_name": "MAXN"},
                       "clocks_end": {"gpu": {"cur_hz": "1e9"}, "emc": [], "cpus": [{"online": True, "cur_hz": None}]}})
    assert sweep_of([odd]).points[0].clocks_mhz == {}
