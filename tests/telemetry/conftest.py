import pytest

from edgeprof.devices import connect, get_device
from edgeprof.session import Board
from edgeprof.transport import make_temp_dir, remove_tree


@pytest.fixture
def board():
    """The `local` device as a Board with a fresh work folder. No GPU fact: a desktop without nvidia-smi samples
    /proc only, as the lab's sim-desktop does."""
    device = get_device("local")
    transport = connect(device)
    board = Board(device, transport, run_id="test", facts={}, workdir=make_temp_dir(transport))
    yield board
    remove_tree(transport, board.workdir)
