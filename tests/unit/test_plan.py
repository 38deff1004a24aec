"""Plans: parsing with located errors, items per board (fp32-only backends, seeded shuffle), the hash."""
import pytest

from edgeprof.lab import Plan, PlanError

MODELS = ["alexnet", "resnet50"]


def write(tmp_path, text):
    path = tmp_path / "plan.toml"
    path.write_text(text)
    return path


def test_items_skip_precisions_caffe_lacks_and_shuffle_per_board_with_the_seed():
    plan = Plan(devices=["a", "b"], models=MODELS, backends=["caffe", "pytorch"], batches=[1, 8],
                precisions=["fp32", "fp16"])
    items = plan.items("a")
    assert len(items) == 2 * 2 * (1 + 2)  # caffe: fp32 only; pytorch: both
    assert not [i for i in items if i.backend == "caffe" and i.precision != "fp32"]
    plan.shuffle = True
    assert plan.items("a") == plan.items("a") != plan.items("b")      # seeded per board
    assert sorted(plan.items("a"), key=lambda i: i.key) == sorted(items, key=lambda i: i.key)
    assert plan.options(items[-1]).precision == items[-1].precision


def test_hash_covers_what_is_measured_not_how_it_is_ordered(tmp_path, monkeypatch):
    from edgeprof.devices import Device, builtin_profiles
    devices = [Device("a", builtin_profiles()["tx2"], host="h")]
    plan = Plan(devices=["a"], models=MODELS)
    same = Plan(devices=["a"], models=MODELS, shuffle=True, cooldown_s=3, name="renamed")
    assert plan.fingerprint(devices) == same.fingerprint(devices)
    assert plan.fingerprint(devices) != Plan(devices=["a"], models=MODELS, batches=[2]).fingerprint(devices)
    assert plan.fingerprint(devices) != Plan(devices=["a"], models=MODELS, iterations=5).fingerprint(devices)


def test_file_errors_name_the_file_and_key(tmp_path):
    with pytest.raises(PlanError, match=r"plan.toml: needs `models`"):
        Plan.from_toml(write(tmp_path, 'devices = ["a"]\n'))
    with pytest.raises(PlanError, match=r"unknown keys \['batch'\]"):
        Plan.from_toml(write(tmp_path, 'devices = ["a"]\nmodels = ["alexnet"]\nbatch = 1\n'))
    with pytest.raises(PlanError, match="unknown backend 'tensorflow'"):
        Plan.from_toml(write(tmp_path, 'devices = ["a"]\nmodels = ["alexnet"]\nbackends = ["tensorflow"]\n'))
    with pytest.raises(PlanError, match="not valid TOML"):
        Plan.from_toml(write(tmp_path, 'devices = ["a"\n'))
    plan = Plan.from_toml(write(tmp_path, 'devices = ["a"]\nmodels = ["alexnet"]\nbatches = [1, 4]\n'))
    assert (plan.name, plan.batches, plan.backends) == ("plan", [1, 4], ["caffe"])


def test_plans_sweep_jobs_and_gpus_and_keep_the_keys_and_hash_of_plans_without(tmp_path):
    from edgeprof.devices import Device, builtin_profiles
    devices = [Device("a", builtin_profiles()["tx2"], host="h")]
    plain = Plan(devices=["a"], models=["alexnet"], backends=["pytorch"])
    assert [i.key for i in plain.items("a")] == ["a|alexnet|pytorch|1|fp32"]
    assert plain.fingerprint(devices) == Plan(devices=["a"], models=["alexnet"], backends=["pytorch"],
                                              jobs=[1]).fingerprint(devices)
    swept = Plan.from_toml(write(tmp_path, 'devices = ["a"]\nmodels = ["alexnet"]\nbackends = ["pytorch"]\n'
                                           'jobs = [1, 2]\ngpus = ["0", "all"]\n'))
    assert [(i.jobs, i.gpus) for i in swept.items("a")] == [(1, "0"), (1, "all"), (2, "0"), (2, "all")]
    assert swept.items("a")[3].key == "a|alexnet|pytorch|1|fp32|jobs=2|gpus=all"
    assert swept.fingerprint(devices) != plain.fingerprint(devices)
    with pytest.raises(PlanError, match=r"plan.toml: gpus: --gpus '0,x': GPU indexes"):
        Plan.from_toml(write(tmp_path, 'devices = ["a"]\nmodels = ["alexnet"]\ngpus = ["0,x"]\n'))
    with pytest.raises(PlanError, match="jobs"):
        Plan.from_toml(write(tmp_path, 'devices = ["a"]\nmodels = ["alexnet"]\njobs = [0]\n'))
