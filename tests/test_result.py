"""Result's typed parts (Latency, Timing, Memory, Power, Flag) read what every backend reports from the stored
dicts, and to_dict writes the backend's own figures under the fixed key "figures" besides the backend-named
key old readers use."""
import json

from edgeprof.result import Flag, Result


def runner_result() -> Result:
    result = Result(device="sim-desktop", model="alexnet", backend="pytorch", batch=2, run_id="r1", span="compute",
                    iterations=40, timed_window={"start_s": 10.0, "end_s": 12.5},
                    method={"timer": "cuda_event", "warmup": "5 iterations"},
                    latency_ci95_ms={"median": [4.9, 5.2], "p99": "junk"},
                    latency_unbounded={"max": {"reason": "few", "iterations_needed": 300}},
                    figures={"times_ms": [5.0, 5.1, 4.9], "ci95_ms": [4.9, 5.2], "stop_reason": "converged",
                             "warmup_iterations": 5, "load_s": 1.5, "first_inference_ms": 80.0,
                             "memory": {"allocator_peak_bytes": 2e8, "process_rss_peak_bytes": 9e8,
                                        "nvml_process_bytes": None},
                             "memory_stages": {"loaded": {"rss_bytes": 5e8, "allocator_bytes": None}},
                             "variant": "fp16", "compile_s": 3.0},
                    telemetry={"power_total": {"definition": "VDD_IN", "mean_w": 7.5},
                               "energy": {"per_inference_j": 0.02, "inferences_per_j": 50.0}, "ram_peak_mb": 3000},
                    flags=[{"code": "clocks_moved", "detail": "EMC"}, "gpu_shared", 7])
    result.latency_ms.update(median=5.0, mean=5.1, p99=float("nan"))
    return result


def test_parts_read_the_stored_figures():
    result = runner_result()
    latency, timing, memory, power = result.latency, result.timing, result.memory, result.power
    assert latency.headline == (5.0, "median") and latency.mean == 5.1 and latency.unit == "ms"
    assert latency.p99 is None                                   # not a finite number: as if not measured
    assert latency.intervals == {"median": (4.9, 5.2)} and latency.unbounded["max"]["iterations_needed"] == 300
    assert (timing.iterations, timing.warmup_iterations, timing.timer, timing.stop_reason) == (
        40, 5, "cuda_event", "converged")
    assert timing.window == (10.0, 12.5) and timing.times_ms == (5.0, 5.1, 4.9)
    assert timing.runner_ci95_ms == (4.9, 5.2) and (timing.load_s, timing.first_inference_ms) == (1.5, 80.0)
    assert (memory.allocator_peak_bytes, memory.process_rss_peak_bytes, memory.nvml_process_bytes) == (2e8, 9e8, None)
    assert memory.board_ram_peak_mb == 3000 and memory.stages["loaded"]["rss_bytes"] == 5e8
    assert (power.mean_w, power.definition, power.energy_per_inference_j, power.inferences_per_j) == (
        7.5, "VDD_IN", 0.02, 50.0)
    assert result.flag_list == [Flag("clocks_moved", "EMC"), Flag("gpu_shared"), Flag("?", "7")]


def test_a_caffe_result_has_a_mean_and_no_runner_figures():
    result = Result(device="sim-tx2", model="alexnet", backend="caffe", batch=1, run_id="r1", span="caffe_forward")
    result.latency_ms["mean"] = 12.9
    assert result.latency.headline == (12.9, "mean")
    assert result.timing.times_ms is None and result.timing.window is None
    assert result.power.mean_w is None and result.memory.stages == {} and result.flag_list == []


def test_json_keeps_the_backend_key_and_adds_the_fixed_one():
    result = runner_result()
    doc = json.loads(json.dumps(result.to_dict()))
    assert doc["pytorch"]["times_ms"] == [5.0, 5.1, 4.9] and doc["pytorch"]["variant"] == "fp16"
    assert doc["figures"] == {"variant": "fp16", "compile_s": 3.0}
    assert Result.from_dict(doc).figures == result.figures
    older = {k: v for k, v in doc.items() if k != "figures"}      # a document written before the fixed key
    assert Result.from_dict(older).timing.times_ms == (5.0, 5.1, 4.9)
