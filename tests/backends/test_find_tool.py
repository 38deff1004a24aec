"""find_tool: which of a profile's candidates the board has, and its answer to one question in the same round
trip (caffe --version, trtexec --help); the TensorRT version falls back from trtexec's banner to the packages."""
import os

import pytest

from edgeprof.backends.base import FoundTool, find_tool
from edgeprof.backends.tensorrt.runner import TensorRTBackend
from edgeprof.board import Board
from edgeprof.devices import get_device
from edgeprof.transport.local import LocalTransport


def tool(folder, name, script):
    path = folder / name
    path.write_text("#!/bin/sh\n" + script)
    path.chmod(0o755)
    return path


@pytest.fixture
def board(tmp_path, monkeypatch):
    (tmp_path / "bin").mkdir()
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}:{os.environ['PATH']}")
    return Board(device=get_device("local"), transport=LocalTransport(), run_id="test")


def test_the_first_candidate_there_and_its_answer(board, tmp_path):
    # stderr and a failing exit of the question are not the answer; the tool is found all the same.
    tool(tmp_path / "bin", "caffe", 'echo "caffe version 1.0.0"; echo "glog noise" >&2; exit 1\n')
    found = find_tool(board, ("edgeprof-test-absent", str(tmp_path / "absent"), "caffe"), "caffe", ask="--version")
    assert found == FoundTool(str(tmp_path / "bin/caffe"), "caffe version 1.0.0\n")
    assert find_tool(board, ("caffe",), "caffe") == FoundTool(str(tmp_path / "bin/caffe"), "")
    assert find_tool(board, ("edgeprof-test-absent",), "caffe", ask="--version") is None


def test_a_question_that_would_read_stdin_gets_none(board, tmp_path):
    tool(tmp_path / "bin", "asks", 'read -r answer; echo "got $answer"\n')
    assert find_tool(board, ("asks",), "asks", ask="--version").answer == "got \n"


@pytest.mark.parametrize("banner, packages, expected", [
    ("&&&& RUNNING TensorRT.trtexec [TensorRT v8601] # trtexec --help\n", "", ("8.6.1", "trtexec banner")),
    # An older trtexec without the banner: the packages JetPack installs name it.
    ("=== Model Options ===\n  --uff=<file>  0.5 represent half\n", "libnvinfer8 8.2.1-1+cuda10.2\n",
     ("8.2.1", "dpkg package")),
])
def test_the_tensorrt_version_from_the_banner_or_else_the_packages(board, tmp_path, banner, packages, expected):
    tool(tmp_path / "bin", "dpkg-query", f"printf '%s' '{packages}'; exit 1\n")
    version, source = TensorRTBackend._version(board, FoundTool("/usr/src/tensorrt/bin/trtexec", banner))
    assert (str(version), source) == expected
