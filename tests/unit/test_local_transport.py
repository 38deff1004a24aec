"""The local transport honours the same contract as SSH: quoting, exit codes of aborts, separate streams."""
import pytest

from edgeprof.transport import CommandTimeout, make_temp_dir, remove_tree, shell_command
from edgeprof.transport.local import LocalTransport


def test_arguments_are_never_interpreted_by_a_shell(tmp_path):
    marker = tmp_path / "pwned"
    result = LocalTransport().run(["echo", f"x; touch {marker}", "$(id)"])
    assert result.stdout == f"x; touch {marker} $(id)\n"
    assert not marker.exists()


def test_shell_command_quotes_every_word():
    assert shell_command(["caffe", "time", "-model", "a b;c"], {"GLOG_logtostderr": "1"}) == (
        "env GLOG_logtostderr=1 caffe time -model 'a b;c'")


def test_abort_is_134_and_streams_stay_apart():
    result = LocalTransport().run(["sh", "-c", "echo out; echo err >&2; kill -ABRT $$"])
    assert (result.exit_status, result.stdout, result.stderr) == (134, "out\n", "err\n")


def test_missing_program_is_127():
    assert LocalTransport().run(["edgeprof-no-such-program"]).exit_status == 127


def test_timeout_stops_the_command_and_its_children(tmp_path):
    with pytest.raises(CommandTimeout):
        LocalTransport().run(["sh", "-c", f"sleep 5; touch {tmp_path}/late"], timeout=0.5)
    import time
    time.sleep(5.5)
    assert not (tmp_path / "late").exists()


def test_temp_dir_round_trip():
    transport = LocalTransport()
    folder = make_temp_dir(transport)
    transport.put_text(f"{folder}/a.txt", "hello")
    assert transport.get_text(f"{folder}/a.txt") == "hello"
    remove_tree(transport, folder)
    with pytest.raises(ValueError):
        remove_tree(transport, "/home")
