"""What every result records about its model before a backend adds its own: the input shapes as run."""
from edgeprof.board import Board
from edgeprof.devices import get_device
from edgeprof.models import resolve


def test_a_result_records_the_input_shape_it_ran():
    board = Board(get_device("local"), transport=None, run_id="r1")
    result = board.new_result(resolve("alexnet"), "caffe", 4)
    assert result.model_info["input_shapes"] == {"data": [4, 3, 227, 227]}
    assert board.new_result(resolve("torchvision:resnet18"), "pytorch", 2).model_info["input_shapes"] is None
