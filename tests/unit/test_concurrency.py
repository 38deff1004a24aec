"""edgeprof.concurrency (--jobs, --gpus): which GPUs a run may use, the command each job's backend runs on its
GPU, and the aggregate of jobs measured together."""
import pytest

from edgeprof import concurrency
from edgeprof.backends import Options, backend_class
from edgeprof.backends.caffe.runner import CaffeBackend
from edgeprof.backends.pytorch.runner import PyTorchBackend
from edgeprof.board import Board
from edgeprof.concurrency import JobsError, aggregate, job_boards, overlap, parse_gpus, resolve_gpus
from edgeprof.devices import get_device
from edgeprof.models import resolve
from edgeprof.result import Result
from edgeprof.transport import CommandResult, shell_command


class Recording:
    """A transport that runs nothing: every command's shell text is kept, and answers status 1."""
    name = "recording"

    def __init__(self):
        self.commands = []

    def run(self, argv, *, env=None, timeout=None, stdin=None):
        self.commands.append(shell_command(argv, env))
        return CommandResult(self.commands[-1], 1, "", "", 0.0)

    def put_text(self, path, text):
        pass


def recorded_board(backend: str, facts: dict) -> Board:
    board = Board(get_device("local"), Recording(), run_id="r", facts={"gpu_count": 2}, workdir="/w")
    board.backend_facts[backend] = facts
    return board


def test_gpus_as_given_and_as_the_board_has_them():
    assert parse_gpus(None) is None and parse_gpus("all") == "all" and parse_gpus("1,0,1") == (1, 0)
    for bad in ("0,x", "-1", ""):
        with pytest.raises(JobsError):
            parse_gpus(bad)
    assert resolve_gpus(None, {}, "local") == [None]
    assert resolve_gpus("all", {"gpu_count": 4}, "dgx") == [0, 1, 2, 3]
    assert resolve_gpus((1,), {"gpu_count": 2}, "dgx") == [1]
    with pytest.raises(JobsError, match="local has no GPU that nvidia-smi lists; measure its CPU with --jobs K"):
        resolve_gpus("all", {}, "local")
    with pytest.raises(JobsError, match="has 2 GPU\\(s\\), numbered 0 to 1; there is no GPU 2"):
        resolve_gpus((0, 2), {"gpu_count": 2}, "dgx")
    assert concurrency.slots([0, 1], 2) == [0, 0, 1, 1] and concurrency.slots([None], 3) == [None] * 3


def test_a_pytorch_job_on_gpu_n_sees_that_gpu_alone_in_its_own_folder():
    board = recorded_board("pytorch", {"python": "python3", "runner": "/w/torch_runner.py", "torch": "2.5",
                                       "cuda": "12.4", "cuda_available": True})
    backend = PyTorchBackend()
    boards = job_boards(board, [0, 1], backend.gpu_env)
    results = concurrency.run_together(boards, lambda on: backend.measure(
        on, resolve("alexnet"), 1, Options(gpu=int(on.env["CUDA_VISIBLE_DEVICES"]))))
    assert [r.status for r in results] == ["failed", "failed"]     # the recording transport runs nothing
    mkdirs, runs = board.transport.commands[:2], board.transport.commands[2:]
    assert mkdirs == ["mkdir -p -- /w/job-1", "mkdir -p -- /w/job-2"]
    # nvidia-smi's numbering (PCI bus order) is the one --gpus and the telemetry use.
    assert [r.split(" python3 ")[0] for r in runs] == ["env CUDA_DEVICE_ORDER=PCI_BUS_ID CUDA_VISIBLE_DEVICES=0",
                                                       "env CUDA_DEVICE_ORDER=PCI_BUS_ID CUDA_VISIBLE_DEVICES=1"]
    assert all("--device cuda " in r for r in runs) and "--spec /w/job-2/" in runs[1]


def test_caffe_picks_its_gpu_on_its_own_command_line():
    board = recorded_board("caffe", {"path": "/usr/bin/caffe", "version": "1.0.0", "gpu": True})
    backend = CaffeBackend()
    [on] = job_boards(board, [1], backend.gpu_env)
    assert on.env == {"CUDA_DEVICE_ORDER": "PCI_BUS_ID"}       # caffe numbers GPUs as nvidia-smi does
    concurrency.run_together([on], lambda on: backend.measure(on, resolve("alexnet"), 1, Options(gpu=1)))
    command = board.transport.commands[-1]
    assert "CUDA_VISIBLE_DEVICES" not in command and " -phase TEST -gpu 1" in command
    backend.measure(board, resolve("alexnet"), 1, Options())
    assert board.transport.commands[-1].endswith(" -phase TEST -gpu 0")


def test_pycaffe_picks_its_gpu_itself_and_stays_on_the_cpu_without_one():
    from edgeprof.backends.pycaffe import PyCaffeBackend
    board = recorded_board("pycaffe", {"python": "python3", "runner": "/w/pycaffe_runner.py"})
    board.facts["gpu"] = "NVIDIA H100 80GB HBM3"
    backend = PyCaffeBackend()
    [on] = job_boards(board, [1], backend.gpu_env)
    concurrency.run_together([on], lambda on: backend.measure(on, resolve("alexnet"), 2, Options(gpu=1)))
    command = board.transport.commands[-1]
    assert command.startswith("env CUDA_DEVICE_ORDER=PCI_BUS_ID python3 /w/pycaffe_runner.py --model /w/job-1/")
    assert command.endswith(" --gpu 1")
    board.facts.pop("gpu")
    assert backend.measure(board, resolve("alexnet"), 2, Options()).status == "failed"
    assert "--gpu" not in board.transport.commands[-1]
    failed = backend.measure(board, resolve("alexnet"), 2, Options(processor="gpu"))
    assert failed.error == "--processor gpu: local has no GPU its probe found"


@pytest.mark.parametrize("name", ["onnxruntime", "tensorrt", "torchscript"])
def test_the_other_backends_are_put_on_a_gpu_by_the_cuda_runtime(name):
    # trtexec, ONNX Runtime's CUDA provider and torch all run on the CUDA runtime, which hides every other GPU.
    assert backend_class(name).gpu_env(3) == {"CUDA_DEVICE_ORDER": "PCI_BUS_ID", "CUDA_VISIBLE_DEVICES": "3"}
    assert backend_class(name).gpu_env(None) == {}


def job(index, median, ips, start, end, gpu=None, memory=100):
    r = Result(device="d", model="m", backend="pytorch", batch=2, run_id="r", span="compute", id=index,
               throughput_ips=ips, iterations=10, timed_window={"start_s": start, "end_s": end},
               settings={"processor": "cpu"}, figures={"memory": {"process_rss_peak_bytes": memory,
                                                                  "allocator_peak_bytes": None}})
    r.latency_ms["median"] = median
    r.latency_ci95_ms = {"median": [median - 1, median + 1]}
    return r


def test_the_aggregate_sums_throughput_and_takes_the_slowest_latency():
    jobs = [job(1, 10.0, 200.0, 0.0, 10.0), job(2, 12.0, 150.0, 0.5, 10.2)]
    group = concurrency.label(jobs, [None, None])
    total = aggregate(jobs, group)
    assert total.throughput_ips == 350.0 and total.latency_ms["median"] == 12.0
    assert total.latency_ci95_ms == {"median": [11.0, 13.0]} and total.iterations == 20
    assert total.timed_window == {"start_s": 0.0, "end_s": 10.2}
    assert total.jobs == {"aggregate": True, "group": group, "jobs": 2, "gpus": [None, None], "result_ids": [1, 2]}
    assert jobs[1].jobs == {"group": group, "index": 2, "of": 2, "gpu": None}
    assert total.figures["memory"] == {"process_rss_peak_bytes": 200} and total.figures["slowest_job"] == 2
    assert total.figures["overlap"] == pytest.approx(9.5 / 10.2) and total.flags == []
    assert "2 concurrent processes (the default device, the default device)" in total.method["jobs"]


def test_jobs_that_barely_overlap_are_flagged_and_a_failed_job_fails_the_aggregate():
    jobs = [job(1, 10.0, 200.0, 0.0, 10.0, gpu=0), job(2, 10.0, 200.0, 8.0, 18.0, gpu=1)]
    total = aggregate(jobs, concurrency.label(jobs, [0, 1]))
    assert jobs[0].settings["gpu_index"] == 0 and "gpu_index" not in total.settings and total.settings["gpus"] == [0, 1]
    [flag] = total.flags
    assert flag["code"] == "jobs_not_overlapping" and "during 11% of the whole window" in flag["detail"]
    assert overlap([{"start_s": 0, "end_s": 1}, {"start_s": 2, "end_s": 3}]) == 0.0
    jobs[1].fail("out of memory")
    failed = aggregate(jobs, "g")
    assert failed.status == "failed" and failed.error == "1 of 2 concurrent jobs failed; job 2: out of memory"


def test_jobs_take_turns_on_the_host_and_overlap_on_the_board():
    """A job's thread gives its turn up while its command runs: the other job's host work goes on meanwhile,
    and the two runners run at the same time (each waits, up to 2 s, for the other to start)."""
    import threading
    import time

    runners, both = [], threading.Event()

    class Slow(Recording):
        def run(self, argv, *, env=None, timeout=None, stdin=None):
            if argv == ["runner"]:
                runners.append(argv)
                if len(runners) == 2:
                    both.set()
                both.wait(2)
            return super().run(argv, env=env)

    boards = job_boards(Board(get_device("local"), Slow(), run_id="r", workdir="/w"), [None, None], lambda gpu: {})
    started = time.monotonic()
    concurrency.run_together(boards, lambda on: on.run(["runner"]))
    assert both.is_set() and time.monotonic() - started < 2


def test_an_aggregate_names_each_flag_once():
    flags = [{"code": "contended", "detail": "job 1: 0.5 CPUs"}, {"code": "high_spread", "detail": "job 1: IQR"},
             {"code": "contended", "detail": "job 2: 0.4 CPUs"}]
    assert concurrency.merged_flags(flags) == [{"code": "contended", "detail": "job 1: 0.5 CPUs; job 2: 0.4 CPUs"},
                                               {"code": "high_spread", "detail": "job 1: IQR"}]


def test_labels_name_each_gpu_once():
    from edgeprof.reporting.table import backend_label
    jobs = [job(1, 10.0, 200.0, 0.0, 1.0), job(2, 10.0, 200.0, 0.0, 1.0)]
    total = aggregate(jobs, concurrency.label(jobs, [0, 0]))
    assert backend_label(total) == "pytorch (cpu, 2 jobs on GPU 0)"
    assert backend_label(jobs[1]) == "pytorch (cpu, GPU 0, job 2 of 2)"
    caffe = Result(device="d", model="m", backend="caffe", batch=1, run_id="r", settings={"gpu": False})
    assert backend_label(caffe) == "caffe"      # caffe's own settings.gpu says whether, not which
    spread = [job(i, 10.0, 200.0, 0.0, 1.0) for i in (1, 2, 3, 4)]
    assert backend_label(aggregate(spread, concurrency.label(spread, [0, 0, 1, 1]))) == \
        "pytorch (cpu, 4 jobs on GPUs 0,1)"


def test_bad_jobs_gpus_and_metrics_are_refused_before_anything_runs(tmp_path):
    import os
    import subprocess
    import sys

    def cli(*args):
        env = {**os.environ, "EDGEPROF_DB": str(tmp_path / "r.sqlite"), "HOME": str(tmp_path)}
        return subprocess.run([sys.executable, "-m", "edgeprof.cli", *args], capture_output=True, text=True,
                              env=env, timeout=120)

    proc = cli("measure", "--device", "local", "--gpus", "0,x", "alexnet")
    assert proc.returncode == 2 and "--gpus '0,x': GPU indexes as nvidia-smi numbers them" in proc.stderr
    proc = cli("measure", "--device", "local", "--jobs", "0", "alexnet")
    assert proc.returncode == 2 and "--jobs" in proc.stderr
    proc = cli("compare", "--metric", "latency,power")
    assert proc.returncode == 2 and "power: use one or more of latency, throughput, memory" in proc.stderr
    proc = cli("compare", "--mode", "training")
    assert proc.returncode == 2 and "training: use one or more of inference, train-step" in proc.stderr


def test_jobs_on_several_gpus_get_each_gpus_throughput_utilization_and_memory():
    from tests.telemetry.test_summary import h100_line, start
    stamp = 1795462735.0      # h100_line's own nvidia-smi timestamp, 2026-11-23 19:38:55 UTC
    jobs = [job(i, 10.0, ips, stamp - 1, stamp + 1) for i, ips in ((1, 100.0), (2, 90.0), (3, 50.0))]
    total = aggregate(jobs, concurrency.label(jobs, [0, 0, 1]))
    assert total.figures["gpu_throughput_ips"] == {"0": 190.0, "1": 50.0}
    samples = [start()] + [{"kind": "nvidia-smi", "t": stamp, "line": h100_line(
        index=str(gpu), **{"utilization.gpu": load, "memory.used": memory})}
        for gpu, load, memory in ((0, "80", "2000"), (1, "40", "900"), (0, "90", "2100"), (2, "0", "5"))]
    total.telemetry = {"samples": samples}
    concurrency.gpu_telemetry(total)
    assert total.telemetry["per_gpu"] == {
        "0": {"samples": 2, "gpu_load_pct": {"mean": 85.0, "max": 90.0}, "gpu_mem_peak_mb": 2100.0},
        "1": {"samples": 1, "gpu_load_pct": {"mean": 40.0, "max": 40.0}, "gpu_mem_peak_mb": 900.0}}
    cpu_jobs = [job(1, 10.0, 1.0, 0, 1), job(2, 10.0, 1.0, 0, 1)]
    on_cpu = aggregate(cpu_jobs, concurrency.label(cpu_jobs, [None, None]))
    on_cpu.telemetry = {"samples": samples}
    concurrency.gpu_telemetry(on_cpu)
    assert "per_gpu" not in on_cpu.telemetry and on_cpu.figures["gpu_throughput_ips"] == {}
